import { describe, expect, it } from 'vitest';
import { DEMO_CUSTOMER_COUNT, demoInsertStatements, generateDemoData, luhnCheckDigit, luhnValid, seededRandom } from './seed.js';

describe('luhn', () => {
  it('accepts the well-known test numbers and rejects a changed digit', () => {
    for (const n of ['4111111111111111', '4242424242424242', '5555555555554444', '378282246310005', '6011111111111117']) {
      expect(luhnValid(n), n).toBe(true);
    }
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('4111-1111-1111-1111')).toBe(false);
    expect(luhnCheckDigit('411111111111111')).toBe('1');
  });
});

describe('generateDemoData', () => {
  it('is deterministic', () => {
    expect(generateDemoData()).toEqual(generateDemoData());
    expect(generateDemoData(1)).not.toEqual(generateDemoData(2));
    const r = seededRandom(7);
    const s = seededRandom(7);
    expect([r(), r(), r()]).toEqual([s(), s(), s()]);
  });

  it('produces realistic, consistent rows', () => {
    const { customers, orders } = generateDemoData();
    expect(customers).toHaveLength(DEMO_CUSTOMER_COUNT);
    expect(new Set(customers.map((c) => c.email)).size).toBe(customers.length);
    const byId = new Map(customers.map((c) => [c.id, c]));
    for (const c of customers) {
      expect(luhnValid(c.card_number)).toBe(true);
      expect(c.password_hash).toHaveLength(60);
      expect(c.country).toMatch(/^[A-Z]{2}$/);
    }
    for (let i = 1; i < customers.length; i++) {
      expect(customers[i]!.created_at.getTime()).toBeGreaterThanOrEqual(customers[i - 1]!.created_at.getTime());
    }
    expect(orders.length).toBeGreaterThan(customers.length);
    expect(orders.map((o) => o.id)).toEqual(orders.map((_, i) => i + 1));
    for (const o of orders) {
      const c = byId.get(o.customer_id);
      expect(c).toBeDefined();
      expect(o.ordered_at.getTime()).toBeGreaterThanOrEqual(c!.created_at.getTime());
      expect(o.total).toMatch(/^\d+\.\d{2}$/);
    }
  });

  it('builds parameterised inserts under the protocol parameter limit', () => {
    const stmts = demoInsertStatements(generateDemoData());
    for (const s of stmts) {
      expect(s.params.length).toBeLessThan(65_535);
      const max = Math.max(0, ...[...s.sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
      expect(max).toBe(s.params.length);
    }
  });
});

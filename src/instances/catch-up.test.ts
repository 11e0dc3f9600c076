import { describe, expect, it } from 'vitest';
import { createLogger } from '../obs/log.js';
import { StoreCatchUp } from './catch-up.js';

describe('StoreCatchUp', () => {
  it('runs every reader each round; one that fails is reported until it reads again, and does not stop the others', async () => {
    const ran: string[] = [];
    let storeDown = true;
    const catchUp = new StoreCatchUp({
      log: createLogger({ level: 'silent' }),
      readers: [
        {
          name: 'revocations',
          catchUp: () => {
            if (storeDown) throw new Error('SQLITE_BUSY');
            ran.push('revocations');
          },
        },
        { name: 'kills', catchUp: () => ran.push('kills') },
      ],
    });
    expect(catchUp.failing).toEqual([]);
    await catchUp.runOnce();
    expect(ran).toEqual(['kills']);
    expect(catchUp.failing).toEqual(['revocations']);
    storeDown = false;
    await catchUp.runOnce();
    expect(ran).toEqual(['kills', 'revocations', 'kills']);
    expect(catchUp.failing).toEqual([]);
  });
});

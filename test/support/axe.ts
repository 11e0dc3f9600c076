/**
 * axe-core in a Playwright page: the serious and critical accessibility violations of what a
 * selector covers, as "impact rule at element (why)" lines (an empty list is a pass).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export async function seriousAccessibilityProblems(page: Page, selector = 'main'): Promise<string[]> {
  // Evaluated through the DevTools protocol: the console's CSP rightly refuses inline scripts.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(async (context) => {
    const axe = (window as unknown as { axe: { run(context: string): Promise<unknown> } }).axe;
    return await axe.run(context);
  }, selector)) as { violations: Array<{ id: string; impact: string | null; nodes: Array<{ html: string; failureSummary?: string }> }> };
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id} at ${v.nodes.map((n) => `${n.html} (${n.failureSummary ?? ''})`).join(', ')}`);
}

/**
 * The Redis parts of a transcript: a session reads like redis-cli's, `connection> COMMAND args`
 * followed by the reply as redis-cli prints it (the relay records replies already formatted, one
 * per result row: protocols/redis/display.ts), errors as `(error) CODE message`.
 */
import type { CompleteData, MessageData } from './events.js';

export function redisPrompt(connection: string): string {
  return `${connection}> `;
}

/** A reply: its recorded text, or a note when the recording cap left it out. */
export function redisComplete(c: CompleteData, table: { rows: Array<Array<string | null>> } | null): string {
  const rows = table?.rows ?? [];
  if (rows.length === 0) return c.truncated ? `-- jitgate: reply not recorded (limit per ${c.truncated.cap})\n` : '';
  return rows.map((r) => `${r[0] ?? ''}\n`).join('');
}

export function redisMessage(m: MessageData): string {
  return `(error) ${m.code}${m.message ? ` ${m.message}` : ''}\n`;
}

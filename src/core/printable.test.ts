import { describe, expect, it } from 'vitest';
import { echo, escapeControls, escapeControlsKeepLayout } from './printable.js';

describe('escapeControls', () => {
  it('shows control and invisible formatting characters as visible escapes', () => {
    expect(escapeControls('update cards set pin = 0\rselect 1')).toBe('update cards set pin = 0\\rselect 1');
    expect(escapeControls('a\x1b[2K\x1b[1Gb')).toBe('a\\x1b[2K\\x1b[1Gb');
    expect(escapeControls('x\ny\tz\x00\x7f')).toBe('x\\ny\\tz\\x00\\x7f');
    expect(escapeControls('\u0085\u009b31m')).toBe('\\u0085\\u009b31m');
    expect(escapeControls('safe \u202edrow\u202c \u2066x\u2069 \u200b \u2028 \ufeff')).toBe(
      'safe \\u202edrow\\u202c \\u2066x\\u2069 \\u200b \\u2028 \\ufeff',
    );
  });

  it('leaves ordinary text, backslashes and non-Latin scripts alone', () => {
    for (const s of ["select E'\\n' from t", 'Grüße', 'café ☕', 'שלום', '日本語', '']) expect(escapeControls(s)).toBe(s);
  });

  it('keepLayout keeps newlines and tabs only', () => {
    expect(escapeControlsKeepLayout('a\tb\nc\rd\x1be')).toBe('a\tb\nc\\rd\\x1be');
  });
});

describe('echo', () => {
  it('caps and escapes what an error echoes back', () => {
    expect(echo('alice')).toBe('alice');
    const long = echo('a'.repeat(5000));
    expect(long).toBe(`${'a'.repeat(64)}…(5000 characters)`);
    expect(echo('bob\r\x1b[2Kroot')).toBe('bob\\r\\x1b[2Kroot');
  });
});

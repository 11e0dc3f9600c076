/**
 * The player of a session recording: play/pause, speed, skip idle time, a scrubber with marks for
 * holds, refusals, masked results and errors, jump to a statement, and a link to the moment shown.
 * Everything has a visible label; the keys work anywhere in the replay (space plays or pauses,
 * arrows step between events, Home/End go to either end).
 */
import { useState, type ChangeEvent } from 'react';
import { escapedLine } from '../format';
import { clock, MARK_KINDS, momentParam, type MarkKind, type Timeline } from '../replay';

export const SPEEDS = [1, 2, 4, 8] as const;

export interface ReplayState {
  position: number;
  playing: boolean;
  speed: number;
  skipIdle: boolean;
}

export interface ReplayActions {
  toggle(): void;
  seek(ms: number): void;
  step(direction: 1 | -1): void;
  setSpeed(speed: number): void;
  setSkipIdle(on: boolean): void;
}

/** The address of `ms` into this session, to copy or share. */
export function momentLink(ms: number): string {
  return `${location.origin}${location.pathname}?t=${momentParam(ms)}`;
}

export function ReplayControls({ timeline, state, actions }: { timeline: Timeline; state: ReplayState; actions: ReplayActions }) {
  const { position, playing, speed, skipIdle } = state;
  const [copied, setCopied] = useState<string>();
  const pct = (ms: number) => (timeline.duration > 0 ? (ms / timeline.duration) * 100 : 0);
  const counts = new Map<MarkKind, number>();
  for (const m of timeline.marks) counts.set(m.kind, (counts.get(m.kind) ?? 0) + 1);
  const link = momentLink(position);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link);
      setCopied('Link copied to the clipboard.');
    } catch {
      setCopied('Copy the link from the field.');
    }
  };
  const jump = (e: ChangeEvent<HTMLSelectElement>) => {
    const stop = timeline.statements.find((s) => String(s.seq) === e.target.value);
    if (stop) actions.seek(stop.offset);
  };
  // The statement shown last at this position (what "jump to statement" reads as selected).
  const current = [...timeline.statements].reverse().find((s) => s.offset <= position);

  return (
    <div className="player" data-testid="replay-controls">
      <div className="player-row">
        <button type="button" className="primary" onClick={actions.toggle} aria-keyshortcuts="Space" data-testid="play">
          {playing ? '❚❚ Pause' : '▶ Play'}
        </button>
        <button type="button" onClick={() => actions.step(-1)} aria-keyshortcuts="ArrowLeft">
          ◀ Previous event
        </button>
        <button type="button" onClick={() => actions.step(1)} aria-keyshortcuts="ArrowRight">
          Next event ▶
        </button>
        <label className="inline-label">
          Speed
          <select value={speed} onChange={(e) => actions.setSpeed(Number(e.target.value))}>
            {SPEEDS.map((s) => (
              <option key={s} value={s}>
                {s}×
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={skipIdle} onChange={(e) => actions.setSkipIdle(e.target.checked)} /> Skip idle time
        </label>
      </div>
      <div className="scrubber">
        <label htmlFor="replay-position" className="position">
          Position {/* Not an <output>: that is a live region, and playback would announce every tick. */}
          <span className="clock" data-testid="replay-position">
            {clock(position)}
          </span>{' '}
          <span className="muted">of {clock(timeline.duration)}</span>
        </label>
        <div className="track">
          <div className="marks" data-testid="replay-marks">
            {timeline.marks.map((m) => (
              <button
                key={`${m.kind}-${m.seq}`}
                type="button"
                className={`mark mark-${m.kind}`}
                style={{ left: `${pct(m.offset)}%` }}
                data-kind={m.kind}
                title={`${m.label} at ${clock(m.offset)}`}
                aria-label={`${m.label} at ${clock(m.offset)}`}
                onClick={() => actions.seek(m.offset)}
              >
                <span aria-hidden="true">{MARK_KINDS[m.kind].symbol}</span>
              </button>
            ))}
          </div>
          <input
            id="replay-position"
            type="range"
            min={0}
            max={timeline.duration}
            step="any"
            value={position}
            aria-valuetext={`${clock(position)} of ${clock(timeline.duration)}`}
            aria-keyshortcuts="Space ArrowLeft ArrowRight Home End"
            onChange={(e) => actions.seek(Number(e.target.value))}
          />
        </div>
        <p className="legend small">
          {(Object.keys(MARK_KINDS) as MarkKind[]).map((k) => (
            <span key={k} className="legend-item">
              <span className={`mark-symbol mark-${k}`} aria-hidden="true">
                {MARK_KINDS[k].symbol}
              </span>{' '}
              {counts.get(k) ?? 0} {(counts.get(k) ?? 0) === 1 ? MARK_KINDS[k].one : MARK_KINDS[k].many}
            </span>
          ))}
        </p>
      </div>
      <div className="player-row">
        <label className="inline-label grow">
          Jump to statement
          <select value={current ? String(current.seq) : ''} onChange={jump} disabled={timeline.statements.length === 0}>
            {!current && <option value="">{timeline.statements.length ? 'before the first statement' : 'no statements'}</option>}
            {timeline.statements.map((s) => (
              <option key={s.seq} value={s.seq}>
                {s.n}. {clock(s.offset)} — {escapedLine(s.text.length > 60 ? `${s.text.slice(0, 60)}…` : s.text)}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-label grow">
          Link to this moment
          <input readOnly value={link} onFocus={(e) => e.target.select()} data-testid="moment-link" />
        </label>
        <button type="button" onClick={() => void copy()}>
          Copy link
        </button>
      </div>
      <p className="small muted">
        Keys: Space plays or pauses, ← and → step between events, Home and End go to the start and the end.{' '}
        {copied && <span role="status">{copied}</span>}
      </p>
    </div>
  );
}

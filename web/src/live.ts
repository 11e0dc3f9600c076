/**
 * Live updates: one EventSource on /api/events shared by the pages (the cookie authenticates it).
 * Events are hints to re-read; the pages never trust an event over the API's lists.
 */
import { useEffect, useRef, useState } from 'react';
import { api } from './api';

type Listener = (type: string, data: unknown) => void;
const listeners = new Set<Listener>();
let source: EventSource | undefined;
let connected = false;
let renewing = false;
const statusListeners = new Set<(up: boolean) => void>();

const TYPES = [
  'request.created',
  'request.approved',
  'request.denied',
  'request.withdrawn',
  'request.expired',
  'request.escalated',
  'grant.created',
  'grant.revoked',
  'break_glass.used',
  'review.created',
  'review.approved',
  'review.denied',
  'review.expired',
  'review.withdrawn',
  'review.escalated',
  'review.decided',
];

function setConnected(up: boolean) {
  connected = up;
  for (const l of statusListeners) l(up);
}

function ensureSource() {
  if (source) return;
  source = new EventSource('/api/events');
  source.addEventListener('hello', () => setConnected(true));
  source.onerror = () => {
    setConnected(false);
    // The browser reconnects by itself; if the session cookie expired, one API call renews it
    // (or sends the user to sign in) so the reconnect succeeds.
    if (!renewing) {
      renewing = true;
      void api('/api/me')
        .catch(() => undefined)
        .finally(() => setTimeout(() => (renewing = false), 10_000));
    }
  };
  const dispatch = (type: string) => (e: MessageEvent<string>) => {
    let data: unknown;
    try {
      data = JSON.parse(e.data);
    } catch {
      data = undefined;
    }
    for (const l of listeners) l(type, data);
  };
  for (const t of TYPES) source.addEventListener(t, dispatch(t));
  source.onmessage = dispatch('message');
}

export function closeLive(): void {
  source?.close();
  source = undefined;
  setConnected(false);
}

/** Calls `fn` on every live event whose type starts with one of `prefixes`. */
export function useLiveEvents(prefixes: string[], fn: Listener): void {
  const ref = useRef(fn);
  ref.current = fn;
  const key = prefixes.join(',');
  useEffect(() => {
    ensureSource();
    const l: Listener = (type, data) => {
      if (key.split(',').some((p) => type.startsWith(p))) ref.current(type, data);
    };
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, [key]);
}

/**
 * Keeps the stream open while the console is signed in, whatever the page: the header's indicator
 * then says whether live updates arrive, not whether this page happens to listen for them.
 */
export function useLiveConnection(): void {
  useEffect(() => {
    ensureSource();
  }, []);
}

export function useLiveStatus(): boolean {
  const [up, setUp] = useState(connected);
  useEffect(() => {
    statusListeners.add(setUp);
    return () => {
      statusListeners.delete(setUp);
    };
  }, []);
  return up;
}

/**
 * Source of the worker thread that owns the demo database (PGlite + pglite-socket's server).
 *
 * Why a worker: PGlite executes every protocol message synchronously on the thread that calls it, so
 * in the gateway's own thread a `SELECT pg_sleep(10)` or a large sort would freeze every listener,
 * /healthz included. In a worker only the demo database waits.
 *
 * Why a string: the worker must load as plain JavaScript both from `dist/` and from the TypeScript
 * sources under vitest, so it is evaluated (`eval: true`) and imports its two packages by the absolute
 * URLs the parent resolved (passed in workerData), independent of the working directory.
 *
 * Protocol with the parent (worker_threads messages):
 *   worker -> parent  { type: 'ready', port } | { type: 'failed', message }
 *   parent -> worker  { id, op: 'query', sql, params } | { id, op: 'seed', check, schema, statements }
 *                     | { id, op: 'reset' } | { id, op: 'close' }
 *   worker -> parent  { id, ok: true, result } | { id, ok: false, message }
 */
export const PGLITE_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');

function frame(type, body) {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}
const SYNC = frame('S', Buffer.alloc(0));
const query = (sql) => frame('Q', Buffer.from(sql + '\0', 'utf8'));

// First ErrorResponse message text in a raw backend byte stream, or undefined.
function errorIn(bytes) {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i + 5 <= buf.length; ) {
    const len = buf.readInt32BE(i + 1);
    if (buf[i] === 0x45) {
      const fields = buf.subarray(i + 5, i + 1 + len).toString('utf8').split('\0');
      const m = fields.find((f) => f.startsWith('M'));
      return m ? m.slice(1) : 'error';
    }
    i += 1 + len;
  }
  return undefined;
}

(async () => {
  let db;
  let server;
  try {
    const { PGlite } = await import(workerData.pgliteUrl);
    const { PGLiteSocketServer } = await import(workerData.socketUrl);
    db = await PGlite.create(workerData.dir);
    // The parent lets one client at a time through; the second slot only absorbs the short overlap
    // while the previous handler detaches.
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 2 });
    await server.start();
    const port = Number(server.getServerConn().split(':').pop());
    parentPort.postMessage({ type: 'ready', port });
  } catch (err) {
    parentPort.postMessage({ type: 'failed', message: String((err && err.message) || err) });
    try { if (server) await server.stop(); } catch {}
    try { if (db) await db.close(); } catch {}
    parentPort.close();
    return;
  }

  // Between two clients: wait for the previous handler to let go, then end whatever it left behind
  // (an unfinished extended-protocol batch, an open transaction) and DISCARD ALL, so prepared
  // statements, settings, temp tables and LISTENs never leak from one session into the next.
  async function reset() {
    const deadline = Date.now() + 2000;
    while (server.getStats().activeConnections > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await db.runExclusive(async () => {
      await db.execProtocolRaw(SYNC);
      if (db.isInTransaction()) await db.execProtocolRaw(query('ROLLBACK'));
      const failed = errorIn(await db.execProtocolRaw(query('DISCARD ALL')));
      if (failed) throw new Error('session reset failed: ' + failed);
    });
  }

  async function seed(msg) {
    const present = await db.query(msg.check);
    if (present.rows[0] && present.rows[0].present) return false;
    await db.transaction(async (tx) => {
      for (const sql of msg.schema) await tx.exec(sql);
      for (const s of msg.statements) await tx.query(s.sql, s.params);
    });
    return true;
  }

  let closing = false;
  parentPort.on('message', async (msg) => {
    try {
      let result;
      if (msg.op === 'query') result = (await db.query(msg.sql, msg.params || [])).rows;
      else if (msg.op === 'seed') result = await seed(msg);
      else if (msg.op === 'reset') await reset();
      else if (msg.op === 'close') {
        if (!closing) {
          closing = true;
          await server.stop();
          await db.close();
        }
        parentPort.postMessage({ id: msg.id, ok: true });
        parentPort.close();
        return;
      } else throw new Error('unknown op ' + msg.op);
      parentPort.postMessage({ id: msg.id, ok: true, result });
    } catch (err) {
      parentPort.postMessage({ id: msg.id, ok: false, message: String((err && err.message) || err) });
    }
  });
})();
`;

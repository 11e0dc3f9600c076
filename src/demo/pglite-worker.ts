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
 *                     | { id, op: 'close' }
 *   worker -> parent  { id, ok: true, result } | { id, ok: false, message }
 */
export const PGLITE_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');

(async () => {
  let db;
  let server;
  try {
    const { PGlite } = await import(workerData.pgliteUrl);
    const { PGLiteSocketServer } = await import(workerData.socketUrl);
    db = await PGlite.create(workerData.dir);
    // The parent holds one connection and lets its sessions take turns on it (session-mux.ts).
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 });
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

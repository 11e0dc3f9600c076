/**
 * The gateway's own backend credentials, for administrators:
 *
 *   POST /api/admin/credentials/:connection/rotate   rotate the gateway's backend password now
 *   GET  /api/admin/credentials                      per connection: how the gateway logs in, when
 *                                                    it last rotated and next will, and privileges
 *                                                    beyond what sessions need
 *
 * No secret value is ever in a request or an answer.
 */
import { RotationError, type CredentialRotation, type CredentialStatus } from '../credentials/rotation/service.js';
import { requireRole, type RoleModel } from './roles.js';
import { HttpError, type Router } from './router.js';

export interface CredentialRoutesOptions {
  rotation: CredentialRotation;
  roles: RoleModel;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function statusJson(s: CredentialStatus) {
  return {
    ...s,
    lastRotatedAt: iso(s.lastRotatedAt),
    nextRotationAt: iso(s.nextRotationAt),
    lastFailure: s.lastFailure && { at: iso(s.lastFailure.at), reason: s.lastFailure.reason },
  };
}

const STATUS: Record<RotationError['kind'], { status: number; code: string }> = {
  unknown_connection: { status: 404, code: 'not_found' },
  not_rotatable: { status: 409, code: 'not_rotatable' },
  busy: { status: 409, code: 'rotation_in_progress' },
  failed: { status: 502, code: 'rotation_failed' },
};

export function registerCredentialRoutes(router: Router, o: CredentialRoutesOptions): void {
  router.add(
    'POST',
    '/api/admin/credentials/:connection/rotate',
    async (ctx) => {
      requireRole(o.roles, ctx.identity!, ['admin']);
      try {
        const r = await o.rotation.rotate(ctx.params.connection!, ctx.identity!.user);
        return { connection: r.connection, rotatedAt: iso(r.rotatedAt), nextRotationAt: iso(r.nextRotationAt) };
      } catch (err) {
        if (err instanceof RotationError) throw new HttpError(STATUS[err.kind].status, STATUS[err.kind].code, err.message);
        throw err;
      }
    },
    {
      doc: {
        summary: "Rotate the gateway's own backend password on a connection now (the old one stays valid if it fails)",
        roles: ['admin'],
      },
    },
  );

  router.add(
    'GET',
    '/api/admin/credentials',
    async (ctx) => {
      requireRole(o.roles, ctx.identity!, ['admin']);
      return { connections: (await o.rotation.status()).map(statusJson) };
    },
    {
      doc: {
        summary: 'How the gateway logs in to each backend, when its password was rotated, and privileges beyond what sessions need',
        roles: ['admin'],
      },
    },
  );
}

/**
 * Server-side client authentication: the client's password is a jitgate access token, checked
 * against SCRAM verifiers (the token itself is never stored). SCRAM-SHA-256 is the default;
 * SCRAM-SHA-256-PLUS (tls-server-end-point channel binding) is offered over TLS; cleartext only
 * over TLS and only when configured.
 */
import { createHash } from 'node:crypto';
import { matchProof, newNonce, serverSignature, type ScramVerifier } from '../../crypto/scram.js';
import { build, MessageType, parseSaslInitialResponse, ProtocolError, readCString } from './codec.js';
import type { MessageStream } from './message-stream.js';

export type ClientAuthMethod = 'scram-sha-256' | 'cleartext';

export interface TokenVerifier {
  /** Verifiers of every active token of this user on this connection; all share one salt. */
  scramCandidates(
    user: string,
    connection: string,
  ): Promise<{ salt: Buffer; iterations: number; candidates: Array<ScramVerifier & { tokenId: string }> }>;
  verifyCleartext(user: string, connection: string, token: string): Promise<string | undefined>;
}

/**
 * A verifier that accepts a token of the user on any of these connections (all tokens share the
 * store's salt), for telling a token holder that the database they named does not exist.
 */
export function anyConnectionVerifier(inner: TokenVerifier, connections: readonly string[]): TokenVerifier {
  return {
    async scramCandidates(user, connection) {
      const found = (await Promise.all(connections.map((c) => inner.scramCandidates(user, c)))).filter((r) => r.candidates.length > 0);
      if (found.length === 0) return inner.scramCandidates(user, connection);
      const first = found[0]!;
      const same = found.filter((r) => r.iterations === first.iterations && r.salt.equals(first.salt));
      return { salt: first.salt, iterations: first.iterations, candidates: same.flatMap((r) => r.candidates) };
    },
    async verifyCleartext(user, _connection, token) {
      for (const c of connections) {
        const id = await inner.verifyCleartext(user, c, token);
        if (id !== undefined) return id;
      }
      return undefined;
    },
  };
}

export interface ClientAuthOptions {
  methods: ClientAuthMethod[];
  /** The client connection is TLS; `certificate` is our certificate in DER, for channel binding. */
  tls: { certificate: Buffer } | null;
}

export type ClientAuthResult = { ok: true; tokenId: string; method: string } | { ok: false; reason: 'bad_token' | 'method_unavailable' };

export async function authenticateClient(
  stream: MessageStream,
  send: (b: Buffer) => void,
  user: string,
  connection: string,
  verifier: TokenVerifier,
  options: ClientAuthOptions,
): Promise<ClientAuthResult> {
  const method = options.methods.find((m) => m === 'scram-sha-256' || options.tls !== null);
  if (!method) return { ok: false, reason: 'method_unavailable' };
  if (method === 'cleartext') {
    send(build.authCleartext());
    const frame = await expectPassword(stream);
    const token = readCString(frame, 0).value;
    const tokenId = await verifier.verifyCleartext(user, connection, token);
    return tokenId ? { ok: true, tokenId, method } : { ok: false, reason: 'bad_token' };
  }
  return scram(stream, send, user, connection, verifier, options.tls);
}

async function expectPassword(stream: MessageStream): Promise<Buffer> {
  const frame = await stream.read();
  if (frame.type !== MessageType.PasswordMessage) {
    throw new ProtocolError(`expected password response, got message type "${String.fromCharCode(frame.type)}"`);
  }
  return frame.body;
}

async function scram(
  stream: MessageStream,
  send: (b: Buffer) => void,
  user: string,
  connection: string,
  verifier: TokenVerifier,
  tls: { certificate: Buffer } | null,
): Promise<ClientAuthResult> {
  const bindingHash = tls ? endPointHash(tls.certificate) : undefined;
  const offered = bindingHash ? ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] : ['SCRAM-SHA-256'];
  send(build.authSasl(offered));

  const initial = parseSaslInitialResponse(await expectPassword(stream));
  if (!offered.includes(initial.mechanism)) {
    throw new ProtocolError(`client selected an invalid SASL authentication mechanism`);
  }
  const first = parseClientFirst(initial.data);
  const plus = initial.mechanism === 'SCRAM-SHA-256-PLUS';
  if (plus !== (first.binding === 'tls-server-end-point')) {
    throw new ProtocolError('SCRAM channel binding does not match the selected mechanism');
  }
  if (first.binding === 'y' && bindingHash) {
    // The client believes we cannot bind while we offered -PLUS: a downgrade in the middle.
    throw new ProtocolError('SCRAM channel binding negotiation error');
  }

  const { salt, iterations, candidates } = await verifier.scramCandidates(user, connection);
  const nonce = first.nonce + newNonce();
  const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
  send(build.authSaslContinue(serverFirst));

  const finalMessage = (await expectPassword(stream)).toString('utf8');
  const final = parseClientFinal(finalMessage);
  const expectedBinding = Buffer.concat([
    Buffer.from(first.gs2Header, 'utf8'),
    plus && bindingHash ? bindingHash : Buffer.alloc(0),
  ]).toString('base64');
  if (final.channelBinding !== expectedBinding) throw new ProtocolError('SCRAM channel binding check failed');
  if (final.nonce !== nonce) throw new ProtocolError('SCRAM nonce mismatch');

  const authMessage = `${first.bare},${serverFirst},${final.withoutProof}`;
  const index = matchProof(authMessage, final.proof, candidates);
  if (index < 0) return { ok: false, reason: 'bad_token' };
  const match = candidates[index]!;
  send(build.authSaslFinal(`v=${serverSignature(authMessage, match.serverKey).toString('base64')}`));
  return { ok: true, tokenId: match.tokenId, method: initial.mechanism };
}

interface ClientFirst {
  gs2Header: string;
  binding: 'n' | 'y' | string;
  bare: string;
  nonce: string;
}

function parseClientFirst(data: string): ClientFirst {
  const m = /^(n|y|p=([A-Za-z0-9.-]+)),(a=[^,]*)?,((?:m=[^,]*,)?n=[^,]*,r=([\x21-\x2b\x2d-\x7e]+)(?:,.*)?)$/.exec(data);
  if (!m) throw new ProtocolError('malformed SCRAM message');
  if (m[3]) throw new ProtocolError('client uses authorization identity, but it is not supported');
  if (m[4]!.startsWith('m=')) throw new ProtocolError('client requires an unsupported SCRAM extension');
  return {
    gs2Header: `${m[1]},${m[3] ?? ''},`,
    binding: m[2] ?? m[1]!,
    bare: m[4]!,
    nonce: m[5]!,
  };
}

function parseClientFinal(data: string): {
  channelBinding: string;
  nonce: string;
  proof: Buffer;
  withoutProof: string;
} {
  const m = /^(c=([A-Za-z0-9+/=]*),r=([\x21-\x2b\x2d-\x7e]+)(?:,[a-oq-z]=[^,]*)*),p=([A-Za-z0-9+/=]+)$/.exec(data);
  if (!m) throw new ProtocolError('malformed SCRAM message');
  return { withoutProof: m[1]!, channelBinding: m[2]!, nonce: m[3]!, proof: Buffer.from(m[4]!, 'base64') };
}

/**
 * tls-server-end-point (RFC 5929): the hash of our certificate with its signature's hash
 * algorithm (SHA-256 for MD5/SHA-1). Undefined when the algorithm has no defined hash (e.g.
 * Ed25519, RSA-PSS), in which case -PLUS is not offered.
 */
export function endPointHash(certificateDer: Buffer): Buffer | undefined {
  const algorithm = signatureHash(certificateDer);
  return algorithm ? createHash(algorithm).update(certificateDer).digest() : undefined;
}

const HASH_BY_SIGNATURE_OID: Record<string, string> = {
  '2a864886f70d010104': 'sha256', // md5WithRSAEncryption
  '2a864886f70d010105': 'sha256', // sha1WithRSAEncryption
  '2a864886f70d01010b': 'sha256', // sha256WithRSAEncryption
  '2a864886f70d01010c': 'sha384', // sha384WithRSAEncryption
  '2a864886f70d01010d': 'sha512', // sha512WithRSAEncryption
  '2a8648ce3d040301': 'sha256', // ecdsa-with-SHA1
  '2a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '2a8648ce3d040303': 'sha384', // ecdsa-with-SHA384
  '2a8648ce3d040304': 'sha512', // ecdsa-with-SHA512
};

/** Reads Certificate.signatureAlgorithm's OID from DER: SEQUENCE { tbs SEQUENCE, alg SEQUENCE { OID } }. */
function signatureHash(der: Buffer): string | undefined {
  try {
    const outer = derHeader(der, 0);
    const tbs = derHeader(der, outer.contentStart);
    const alg = derHeader(der, tbs.contentStart + tbs.length);
    const oid = derHeader(der, alg.contentStart);
    if (der[alg.contentStart] !== 0x06) return undefined;
    return HASH_BY_SIGNATURE_OID[der.toString('hex', oid.contentStart, oid.contentStart + oid.length)];
  } catch {
    return undefined;
  }
}

function derHeader(der: Buffer, pos: number): { contentStart: number; length: number } {
  let length = der[pos + 1]!;
  let contentStart = pos + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[pos + 2 + i]!;
    contentStart += n;
  }
  if (contentStart + length > der.length) throw new RangeError('truncated DER');
  return { contentStart, length };
}

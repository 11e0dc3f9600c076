/**
 * A private Redis server per test suite (see bench/redis-harness.mjs):
 *
 *   const redis = await startRedis();
 *   afterAll(() => redis.stop());
 */
export { startRedis, REDIS_USERS } from '../../bench/redis-harness.mjs';
export type { RedisServer, RedisCredential } from '../../bench/redis-harness.mjs';

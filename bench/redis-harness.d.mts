/** Types for ./redis-harness.mjs. */
export interface RedisCredential {
  user: string;
  password: string;
}

export declare const REDIS_USERS: Readonly<{ default: RedisCredential; gateway: RedisCredential }>;

export interface RedisServer {
  host: string;
  port: number;
  users: typeof REDIS_USERS;
  log(): string;
  stop(): Promise<void>;
}

export declare function startRedis(options?: { extraArgs?: string[]; startTimeoutMs?: number }): Promise<RedisServer>;

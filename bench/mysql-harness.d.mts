export interface MariadbCredential {
  user: string;
  password: string;
}
export interface MariadbServer {
  host: string;
  port: number;
  dir: string;
  socket: string;
  caPath: string;
  users: { native: MariadbCredential; admin: MariadbCredential };
  root(sql: string): string;
  cleanup(): Promise<void>;
}
export function startMariadb(opts?: { args?: string[]; startTimeoutMs?: number }): Promise<MariadbServer>;

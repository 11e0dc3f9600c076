/**
 * Deterministic demo data for the embedded demo database: customers with the kinds of fields masking
 * exists for (names, emails, phone numbers, card numbers, password hashes) and their orders.
 *
 * Everything comes from a fixed-seed generator, so every installation has the same rows and tests can
 * name them. Nothing here is real: emails use the reserved example.* domains, card numbers are
 * Luhn-valid numbers on the card networks' published test prefixes, phone numbers use ranges set aside
 * for fiction where a country has one (US/CA 555-01xx, UK 07700 900xxx, AU 0491 570 xxx,
 * FR 01 99 00 xx xx) and random digits in the national format elsewhere, and password hashes are
 * random strings in bcrypt's format (they hash nothing).
 */

import { luhnValid } from '../masking/detectors.js';

export { luhnValid };

export const DEMO_SEED = 20240601;
export const DEMO_CUSTOMER_COUNT = 200;

export interface DemoCustomer {
  id: number;
  full_name: string;
  email: string;
  phone: string;
  card_number: string;
  password_hash: string;
  country: string;
  created_at: Date;
}

export interface DemoOrder {
  id: number;
  customer_id: number;
  ordered_at: Date;
  status: 'pending' | 'paid' | 'shipped' | 'delivered' | 'refunded' | 'cancelled';
  total: string;
  currency: string;
}

export interface DemoData {
  customers: DemoCustomer[];
  orders: DemoOrder[];
}

/** mulberry32: small, fast, good enough for demo data, identical on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The digit that makes `body + digit` Luhn-valid. */
export function luhnCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return String(d);
  throw new Error('unreachable');
}

const FIRST_NAMES = [
  'Amelia',
  'Oliver',
  'Sofia',
  'Liam',
  'Maya',
  'Noah',
  'Chloe',
  'Ethan',
  'Aisha',
  'Lucas',
  'Hannah',
  'Mateo',
  'Priya',
  'Jonas',
  'Yuki',
  'Elena',
  'Kwame',
  'Ingrid',
  'Diego',
  'Fatima',
  'Henrik',
  'Leila',
  'Tomás',
  'Grace',
  'Arjun',
  'Camille',
  'Emeka',
  'Sara',
  'Hiroshi',
  'Zoe',
  'Mohammed',
  'Lena',
  'Rafael',
  'Nora',
  'Daniel',
  'Isabela',
  'Kenji',
  'Olivia',
  'Samuel',
  'Freya',
];

const LAST_NAMES = [
  'Okafor',
  'Lindqvist',
  'García',
  'Nakamura',
  'Müller',
  'Patel',
  'Dubois',
  'Smith',
  'Kowalski',
  'Rossi',
  'Haddad',
  'Johansson',
  'Silva',
  'Kim',
  'Brown',
  'Fischer',
  'Moreau',
  'Novak',
  'Mensah',
  'Tanaka',
  'Costa',
  'Jensen',
  'Sharma',
  'Walsh',
  'Bakker',
  'Fernández',
  'Wilson',
  'Ahmed',
  'Larsen',
  'Ivanova',
  'Martin',
  'Okonkwo',
  'Schmidt',
  'Lopez',
  'Andersson',
  'Ito',
  'Murphy',
  'Santos',
  'Nguyen',
  'Clarke',
];

const DOMAINS = ['example.com', 'example.net', 'example.org', 'mail.example.com'];

interface CountryInfo {
  code: string;
  currency: string;
  phone: (r: () => number) => string;
}

const digits = (r: () => number, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(r() * 10);
  return s;
};
const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;
const pad = (n: number, width: number): string => String(n).padStart(width, '0');

const COUNTRIES: CountryInfo[] = [
  { code: 'US', currency: 'USD', phone: (r) => `+1 ${pick(r, ['202', '312', '415', '512', '617'])}-555-01${digits(r, 2)}` },
  { code: 'US', currency: 'USD', phone: (r) => `+1 ${pick(r, ['206', '303', '404', '718', '919'])}-555-01${digits(r, 2)}` },
  { code: 'CA', currency: 'CAD', phone: (r) => `+1 ${pick(r, ['416', '514', '604'])}-555-01${digits(r, 2)}` },
  { code: 'GB', currency: 'GBP', phone: (r) => `+44 7700 900${digits(r, 3)}` },
  { code: 'GB', currency: 'GBP', phone: (r) => `+44 7700 900${digits(r, 3)}` },
  { code: 'AU', currency: 'AUD', phone: (r) => `+61 491 570 ${pad(6 + Math.floor(r() * 154), 3)}` },
  { code: 'FR', currency: 'EUR', phone: (r) => `+33 1 99 00 ${digits(r, 2)} ${digits(r, 2)}` },
  { code: 'DE', currency: 'EUR', phone: (r) => `+49 30 ${digits(r, 8)}` },
  { code: 'NL', currency: 'EUR', phone: (r) => `+31 6 ${digits(r, 8)}` },
  { code: 'ES', currency: 'EUR', phone: (r) => `+34 6${digits(r, 2)} ${digits(r, 3)} ${digits(r, 3)}` },
  { code: 'SE', currency: 'SEK', phone: (r) => `+46 70 ${digits(r, 3)} ${digits(r, 2)} ${digits(r, 2)}` },
  { code: 'BR', currency: 'BRL', phone: (r) => `+55 11 9${digits(r, 4)}-${digits(r, 4)}` },
  { code: 'IN', currency: 'INR', phone: (r) => `+91 98${digits(r, 3)} ${digits(r, 5)}` },
  { code: 'JP', currency: 'JPY', phone: (r) => `+81 90-${digits(r, 4)}-${digits(r, 4)}` },
];

/** Published test prefixes of the card networks (Visa 4000 00, Mastercard 5555 55 / 2223 00, Amex 3782 82 / 3714 49, Discover 6011 00). */
const CARD_PREFIXES: Array<{ prefix: string; length: number }> = [
  { prefix: '400000', length: 16 },
  { prefix: '424242', length: 16 },
  { prefix: '555555', length: 16 },
  { prefix: '222300', length: 16 },
  { prefix: '378282', length: 15 },
  { prefix: '371449', length: 15 },
  { prefix: '601100', length: 16 },
];

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function bcryptLike(r: () => number): string {
  const cost = pick(r, ['10', '12', '12', '12']);
  const variant = pick(r, ['2b', '2b', '2a']);
  let body = '';
  for (let i = 0; i < 53; i++) body += BCRYPT_ALPHABET[Math.floor(r() * 64)];
  return `$${variant}$${cost}$${body}`;
}

function cardNumber(r: () => number): string {
  const { prefix, length } = pick(r, CARD_PREFIXES);
  const body = prefix + digits(r, length - prefix.length - 1);
  return body + luhnCheckDigit(body);
}

function emailLocal(first: string, last: string): string {
  return `${first}.${last}`
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z.]/g, '');
}

const CUSTOMERS_FROM = Date.UTC(2022, 0, 1);
const CUSTOMERS_TO = Date.UTC(2025, 5, 30);
const ORDERS_TO = Date.UTC(2025, 8, 30);

const STATUS_WEIGHTS: Array<[DemoOrder['status'], number]> = [
  ['delivered', 55],
  ['shipped', 12],
  ['paid', 10],
  ['pending', 8],
  ['refunded', 7],
  ['cancelled', 8],
];

function weighted<T>(r: () => number, table: Array<[T, number]>): T {
  const total = table.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [v, w] of table) {
    if ((x -= w) < 0) return v;
  }
  return (table[table.length - 1] as [T, number])[0];
}

export function generateDemoData(seed = DEMO_SEED, customerCount = DEMO_CUSTOMER_COUNT): DemoData {
  const r = seededRandom(seed);
  const times = Array.from({ length: customerCount }, () => CUSTOMERS_FROM + Math.floor(r() * (CUSTOMERS_TO - CUSTOMERS_FROM))).sort(
    (a, b) => a - b,
  );
  const emails = new Set<string>();
  const customers: DemoCustomer[] = [];
  for (let i = 0; i < customerCount; i++) {
    const first = pick(r, FIRST_NAMES);
    const last = pick(r, LAST_NAMES);
    const country = pick(r, COUNTRIES);
    const domain = pick(r, DOMAINS);
    let local = emailLocal(first, last);
    if (r() < 0.3) local += pad(Math.floor(r() * 100), 2);
    let email = `${local}@${domain}`;
    for (let n = 2; emails.has(email); n++) email = `${local}${n}@${domain}`;
    emails.add(email);
    customers.push({
      id: i + 1,
      full_name: `${first} ${last}`,
      email,
      phone: country.phone(r),
      card_number: cardNumber(r),
      password_hash: bcryptLike(r),
      country: country.code,
      created_at: new Date(Math.floor((times[i] as number) / 1000) * 1000),
    });
  }

  const currencyOf = new Map(COUNTRIES.map((c) => [c.code, c.currency]));
  const orders: DemoOrder[] = [];
  for (const c of customers) {
    const n = Math.floor(r() * r() * 7); // skewed: many customers with 0-2 orders, a few with 5-6
    const start = c.created_at.getTime();
    for (let k = 0; k < n; k++) {
      const at = start + Math.floor(r() * (ORDERS_TO - start));
      const currency = currencyOf.get(c.country) ?? 'USD';
      const amount = currency === 'JPY' ? 500 + Math.floor(r() * 120_000) : 5 + Math.floor(r() * 90_000) / 100;
      orders.push({
        id: 0,
        customer_id: c.id,
        ordered_at: new Date(Math.floor(at / 1000) * 1000),
        status: weighted(r, STATUS_WEIGHTS),
        total: amount.toFixed(2),
        currency,
      });
    }
  }
  orders.sort((a, b) => a.ordered_at.getTime() - b.ordered_at.getTime() || a.customer_id - b.customer_id);
  orders.forEach((o, i) => (o.id = i + 1));
  return { customers, orders };
}

export const DEMO_SCHEMA_SQL = [
  `CREATE TABLE customers (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    full_name text NOT NULL,
    email text NOT NULL UNIQUE,
    phone text NOT NULL,
    card_number text NOT NULL,
    password_hash text NOT NULL,
    country char(2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE TABLE orders (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers(id),
    ordered_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'refunded', 'cancelled')),
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    currency char(3) NOT NULL
  )`,
  `CREATE INDEX orders_customer_id_idx ON orders (customer_id)`,
  `COMMENT ON TABLE customers IS 'jitgate demo data: generated, not real people'`,
];

export interface SqlStatement {
  sql: string;
  params: unknown[];
}

/** Multi-row INSERTs (chunked to stay well under the 65535-parameter limit). */
export function demoInsertStatements(data: DemoData, chunk = 100): SqlStatement[] {
  const out: SqlStatement[] = [];
  const rows = <T>(table: string, cols: string[], items: T[], values: (t: T) => unknown[]) => {
    for (let i = 0; i < items.length; i += chunk) {
      const part = items.slice(i, i + chunk);
      const params: unknown[] = [];
      const tuples = part.map((item) => {
        const vals = values(item);
        const ph = vals.map((v) => {
          params.push(v);
          return `$${params.length}`;
        });
        return `(${ph.join(', ')})`;
      });
      out.push({ sql: `INSERT INTO ${table} (${cols.join(', ')}) VALUES ${tuples.join(', ')}`, params });
    }
  };
  rows('customers', ['id', 'full_name', 'email', 'phone', 'card_number', 'password_hash', 'country', 'created_at'], data.customers, (c) => [
    c.id,
    c.full_name,
    c.email,
    c.phone,
    c.card_number,
    c.password_hash,
    c.country,
    c.created_at.toISOString(),
  ]);
  rows('orders', ['id', 'customer_id', 'ordered_at', 'status', 'total', 'currency'], data.orders, (o) => [
    o.id,
    o.customer_id,
    o.ordered_at.toISOString(),
    o.status,
    o.total,
    o.currency,
  ]);
  out.push({ sql: `SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))`, params: [] });
  out.push({ sql: `SELECT setval(pg_get_serial_sequence('orders', 'id'), greatest((SELECT max(id) FROM orders), 1))`, params: [] });
  return out;
}

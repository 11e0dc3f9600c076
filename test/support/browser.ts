/**
 * A scripted browser for sign-in flows: follows redirects, keeps cookies per host, and fills and
 * submits HTML forms. Enough for an OpenID Provider's login, consent and device pages; no
 * JavaScript, no rendering. Every request is a real HTTP request to the real server.
 */

export interface Page {
  url: string;
  status: number;
  html: string;
}

export interface FormInfo {
  id?: string;
  action: string;
  method: string;
  fields: Record<string, string>;
}

export class ScriptedBrowser {
  private readonly cookies = new Map<string, Map<string, string>>();
  /** Every URL visited, in order (redirects included). */
  readonly visited: string[] = [];

  /**
   * `stopAt`: a URL the browser is sent to but does not load (returned as a page with status 0),
   * e.g. a redirect URI nobody listens on, to read the authorization code from it.
   */
  constructor(private readonly options: { stopAt?: (url: string) => boolean } = {}) {}

  /** GET `url` and follow redirects until a page that is not a redirect. */
  async open(url: string): Promise<Page> {
    return this.request(url, { method: 'GET' });
  }

  /** Submit a form found on `page` (the first one, or the one whose id or action matches). */
  async submit(
    page: Page,
    values: Record<string, string>,
    opts: { form?: string | RegExp; button?: Record<string, string> } = {},
  ): Promise<Page> {
    const forms = parseForms(page.html, page.url);
    const form =
      opts.form === undefined
        ? forms[0]
        : forms.find((f) =>
            typeof opts.form === 'string' ? f.id === opts.form || f.action.includes(opts.form) : opts.form!.test(f.action),
          );
    if (!form) throw new Error(`no matching form on ${page.url}:\n${page.html.slice(0, 2000)}`);
    const body = new URLSearchParams({ ...form.fields, ...values, ...(opts.button ?? {}) });
    if (form.method === 'get') {
      const target = new URL(form.action);
      for (const [k, v] of body) target.searchParams.set(k, v);
      return this.open(target.href);
    }
    return this.request(form.action, { method: 'POST', body: body.toString(), contentType: 'application/x-www-form-urlencoded' });
  }

  /** The cookies kept for `host` (host:port), as name -> value. */
  cookiesFor(host: string): Map<string, string> {
    return new Map(this.cookies.get(host) ?? []);
  }

  private async request(url: string, init: { method: string; body?: string; contentType?: string }): Promise<Page> {
    let current = url;
    let method = init.method;
    let body = init.body;
    for (let hops = 0; hops < 20; hops++) {
      this.visited.push(current);
      if (this.options.stopAt?.(current)) return { url: current, status: 0, html: '' };
      const target = new URL(current);
      const headers: Record<string, string> = { accept: 'text/html,application/json' };
      const jar = this.cookies.get(target.host);
      if (jar && jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body !== undefined) headers['content-type'] = init.contentType ?? 'application/x-www-form-urlencoded';
      const res = await fetch(current, { method, headers, body, redirect: 'manual' });
      this.storeCookies(target.host, res.headers.getSetCookie());
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).href;
        // 303 (and in practice 301/302) turn a POST into a GET.
        if (res.status !== 307 && res.status !== 308) {
          method = 'GET';
          body = undefined;
        }
        await res.arrayBuffer();
        continue;
      }
      return { url: current, status: res.status, html: await res.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  private storeCookies(host: string, setCookies: string[]): void {
    let jar = this.cookies.get(host);
    if (!jar) this.cookies.set(host, (jar = new Map()));
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired =
        attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()) ||
        attrs.some((a) => /^\s*max-age=0/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }
}

/** The forms of a page: action (absolute), method, and the named inputs with their values. */
export function parseForms(html: string, base: string): FormInfo[] {
  const forms: FormInfo[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = m[1]!;
    const attr = (name: string) => new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(attrs)?.[1];
    const fields: Record<string, string> = {};
    for (const input of m[2]!.matchAll(/<input\b([^>]*)>/gi)) {
      const a = input[1]!;
      const name = /\bname\s*=\s*"([^"]*)"/i.exec(a)?.[1];
      if (!name) continue;
      fields[name] = decodeEntities(/\bvalue\s*=\s*"([^"]*)"/i.exec(a)?.[1] ?? '');
    }
    const id = attr('id');
    forms.push({
      ...(id !== undefined ? { id } : {}),
      action: new URL(decodeEntities(attr('action') ?? ''), base).href,
      method: (attr('method') ?? 'get').toLowerCase(),
      fields,
    });
  }
  return forms;
}

function decodeEntities(s: string): string {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'");
}

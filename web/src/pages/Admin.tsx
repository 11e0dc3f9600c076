/** Configuration as the running gateway sees it (admins): secrets appear by reference only. */
import { useEffect, useState } from 'react';
import { api, errorText } from '../api';
import { ErrorNote } from '../format';

const SECTIONS: Array<[string, string]> = [
  ['connections', 'Connections'],
  ['policies', 'Access policies'],
  ['guardrails', 'Guardrails'],
  ['secrets', 'Secrets (names only)'],
  ['identities', 'Identity providers'],
];

export function AdminPage() {
  const [data, setData] = useState<Record<string, unknown>>({});
  const [error, setError] = useState<string>();
  useEffect(() => {
    Promise.all(SECTIONS.map(async ([key]) => [key, await api<unknown>(`/api/admin/${key}`)] as const))
      .then((pairs) => setData(Object.fromEntries(pairs)))
      .catch((err: unknown) => setError(errorText(err)));
  }, []);
  return (
    <section>
      <h1>Configuration</h1>
      <ErrorNote error={error} />
      {SECTIONS.map(([key, title]) => (
        <details key={key} open={key === 'connections'}>
          <summary>{title}</summary>
          <pre className="json">{data[key] === undefined ? 'Loading…' : JSON.stringify(data[key], null, 2)}</pre>
        </details>
      ))}
    </section>
  );
}

/** One held statement (the link a held psql client is shown): its details and the decision. */
import { useCallback, useEffect, useState } from 'react';
import { api, errorText, type Me, type Review } from '../api';
import { ErrorNote } from '../format';
import { useLiveEvents } from '../live';
import { Link } from '../router';
import { ReviewItem } from './Approvals';

export function ReviewPage({ id, me }: { id: string; me: Me }) {
  const [review, setReview] = useState<Review>();
  const [error, setError] = useState<string>();
  const load = useCallback(() => {
    api<Review>(`/api/reviews/${encodeURIComponent(id)}`)
      .then((r) => {
        setReview(r);
        setError(undefined);
      })
      .catch((err: unknown) => setError(errorText(err)));
  }, [id]);
  useEffect(load, [load]);
  useLiveEvents(['review.'], load);
  return (
    <section>
      <h1>Held statement</h1>
      <p>
        <Link to="/approvals">All approvals</Link>
      </p>
      <ErrorNote error={error} />
      {review && (
        <div className="card">
          <ReviewItem r={review} me={me} onDone={load} />
        </div>
      )}
    </section>
  );
}

// Small pieces the admin and network views share (admin.js, netviews.js).
import { h } from 'preact';
import { useCallback, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);

// An error line, announced to screen readers; the API's own message.
export function ErrorLine({ error }) {
  return error ? html`<p class="error" role="alert">${error}</p>` : null;
}

// run(fn) runs one action at a time: busy while it runs, error its message (the API's) when it
// throws; run resolves true when fn succeeded.
export function useAction() {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (fn) => {
    setBusy(true);
    setError('');
    try {
      await fn();
      return true;
    } catch (err) {
      setError(err.message);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { error, busy, run, setError };
}

// payment-status.js: watch one payment's status from a checkout page.
//
//   import { watchPayment } from "https://payments.example/client/payment-status.js";
//   const last = await watchPayment({ streamUrl: order.stream_url, onEvent: (e) => show(e.status) });
//
// A plain ES module: no dependencies, no build step. It reads the order's
// Server-Sent Events stream with EventSource and, when a stream cannot be
// held, long-polls the same URL (`Accept: application/json`). Whatever
// happens to the connection, `onEvent` sees every event from seq 1 once, in
// order, and once the terminal event is in, nothing stays open or scheduled.

const TERMINAL = new Set(["succeeded", "failed"]);
// The server writes an event as soon as a stream opens (we resume one event
// early for that); nothing within this time means a proxy holds the stream back.
const FIRST_EVENT_MS = 5000;
// After a held stream, long-poll this long (doubled each time it happens
// again, up to the maximum) before the stream is tried again.
const POLL_FOR_MS = 30000;
const POLL_FOR_MAX_MS = 10 * 60000;
// How long the server may hold a long-poll, and how much longer we wait for
// its answer before taking the connection for hung.
const POLL_WAIT_S = 25;
const POLL_SLACK_MS = 10000;
// Retries after failures: exponential from BACKOFF_MS, capped, with jitter.
const BACKOFF_MS = 500;
const BACKOFF_MAX_MS = 30000;
const RETRY_AFTER_MAX_S = 300;

/** Why watchPayment gave up: an answer that retrying cannot change. */
export class PaymentStatusError extends Error {
  constructor(message, status = 0, problem = null) {
    super(message);
    this.name = "PaymentStatusError";
    this.status = status;
    this.problem = problem;
  }
}

export function watchPayment({ streamUrl, onEvent, refreshStreamUrl, heartbeatSeconds = 15, signal } = {}) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(signal.reason);
    if (!streamUrl) return reject(new TypeError("watchPayment: streamUrl is required"));
    // A relative stream_url (as the order JSON gives it) belongs to the service this module came from.
    let url = new URL(streamUrl, import.meta.url);
    let lastSeq = 0;          // the newest seq handed to onEvent
    let settled = false;
    let attempt = null;       // AbortController of what runs now: a stream, a fetch or a wait
    let failures = 0;         // consecutive tries that got nothing: drives the backoff
    let streamMisses = 0;     // streams in a row that failed before their first event while the long-poll worked
    let refreshed = false;    // a fresh URL was fetched and nothing has worked since
    let pollUntil = 0;        // long-poll instead of streaming until then
    let pollFor = POLL_FOR_MS;
    let wake = null;          // resolves the wait while the page is paused
    const paused = { offline: typeof navigator !== "undefined" && navigator.onLine === false, frozen: false, hidden: false };
    const isPaused = () => paused.offline || paused.frozen || paused.hidden;
    const silenceMs = 2 * 1000 * (Number(heartbeatSeconds) > 0 ? Number(heartbeatSeconds) : 15);

    function finish(ok, value) {
      if (settled) return;
      settled = true;
      if (attempt) attempt.abort();   // closes the EventSource or the fetch, clears its timers
      removeListeners();
      if (wake) wake();
      if (ok) resolve(value); else reject(value);
    }

    // Hands an event on unless it was seen already (a stream resumes one
    // event early on purpose). False at a gap: the caller fetches what is missing.
    function deliver(ev) {
      if (!ev || typeof ev.seq !== "number" || ev.seq <= lastSeq) return true;
      if (ev.seq !== lastSeq + 1) return false;
      lastSeq = ev.seq;
      try {
        if (onEvent) onEvent(ev);
      } catch (error) {
        // The page's bug must not stop the watch; report it as an uncaught error would be.
        if (typeof reportError === "function") reportError(error); else console.error(error);
      }
      if (TERMINAL.has(ev.status)) finish(true, ev);
      return true;
    }

    function backoff(retryAfterSeconds) {
      // Jitter, so that pages cut at the same moment do not come back at the same moment.
      let ms = Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** failures) * (0.5 + Math.random() / 2);
      if (retryAfterSeconds > 0) ms = Math.max(ms, Math.min(retryAfterSeconds, RETRY_AFTER_MAX_S) * 1000 * (1 + Math.random() / 2));
      failures++;
      return ms;
    }

    // Waits ms, or less when the attempt is aborted (going offline, online, abort...).
    function pause(ms, ctl) {
      return new Promise((done) => {
        const end = () => { clearTimeout(timer); ctl.signal.removeEventListener("abort", end); done(); };
        const timer = setTimeout(end, ms);
        ctl.signal.addEventListener("abort", end);
      });
    }

    // One EventSource until it ends; resolves with why it ended and whether it delivered anything.
    function stream(ctl) {
      return new Promise((done) => {
        const u = new URL(url);
        // One event early, so that even a stream with nothing new starts with an event: proof it flows.
        u.searchParams.set("lastEventId", String(Math.max(lastSeq - 1, 0)));
        const es = new EventSource(u.href);
        let delivered = false, silence = null;
        const first = setTimeout(() => end("buffered"), FIRST_EVENT_MS);
        function end(why) {
          clearTimeout(first);
          clearTimeout(silence);
          es.close();
          ctl.signal.removeEventListener("abort", onAbort);
          done({ why, delivered });
        }
        const onAbort = () => end("stopped");
        ctl.signal.addEventListener("abort", onAbort);
        es.addEventListener("status", (message) => {
          let ev;
          try { ev = JSON.parse(message.data); } catch { return end("error"); }
          delivered = true;
          clearTimeout(first);
          // EventSource hides the server's `: keep-alive` comments, so silence is
          // measured between events: past twice the heartbeat the connection may
          // be dead (a NAT or proxy dropped it without a word), and a fresh stream
          // answers at once with its early event if the service is there.
          clearTimeout(silence);
          silence = setTimeout(() => end("silent"), silenceMs);
          if (!deliver(ev)) end("gap");   // (the terminal event ends it through finish)
        });
        // Any error closes it: left alone, EventSource reconnects by itself after
        // a network error but gives up for good after a non-200 answer (a proxy's
        // 502, an expired token's 401), and says nothing about which it was.
        es.onerror = () => end("error");
      });
    }

    // The same URL as JSON: every event after lastSeq, held up to `wait` s
    // when there is none yet. With wait 0 it is the probe that tells why a
    // stream failed (EventSource shows no status code) and fetches what it missed.
    async function longPoll(wait, ctl) {
      const u = new URL(url);
      u.searchParams.delete("lastEventId");
      u.searchParams.set("after", String(lastSeq));
      u.searchParams.set("wait", String(wait));
      const fetchCtl = new AbortController();
      const onAbort = () => fetchCtl.abort();
      ctl.signal.addEventListener("abort", onAbort);
      const hung = setTimeout(() => fetchCtl.abort(), wait * 1000 + POLL_SLACK_MS);
      try {
        const res = await fetch(u.href, { headers: { Accept: "application/json" }, cache: "no-store", signal: fetchCtl.signal });
        if (res.ok) return { status: res.status, body: await res.json() };
        const type = res.headers.get("Content-Type") || "";
        const problem = type.includes("json") ? await res.json().catch(() => null) : null;
        return { status: res.status, problem, retryAfter: Number(res.headers.get("Retry-After")) || 0 };
      } catch {
        return { status: 0 };   // offline, refused, reset, hung, or a proxy's answer without CORS headers
      } finally {
        clearTimeout(hung);
        ctl.signal.removeEventListener("abort", onAbort);
      }
    }

    // Acts on a long-poll's answer; returns once it is time for the next try.
    async function handle(answer, ctl, polling) {
      if (answer.body) {
        const events = Array.isArray(answer.body.events) ? answer.body.events : [];
        for (const ev of events) if (!deliver(ev)) break;   // a gap: the next poll starts after the last one delivered
        if (settled) return;
        failures = 0;
        refreshed = false;
        if (polling && events.length === 0 && answer.took < 1000) {
          await pause(backoff(), ctl);   // answered at once with nothing: something does not hold requests; do not spin
        }
        return;
      }
      const type = (answer.problem && answer.problem.type) || "";
      if (answer.status === 401 && type.endsWith("token-expired")) {
        if (!refreshStreamUrl) return finish(false, new PaymentStatusError("the stream token has expired and no refreshStreamUrl was given", 401, answer.problem));
        // Expired again right after a refresh (a clock off, a stale cache): do not spin.
        if (refreshed) await pause(backoff(), ctl);
        if (settled || ctl.signal.aborted) return;
        try {
          const fresh = await refreshStreamUrl();
          if (!settled) url = new URL(fresh, import.meta.url);
          refreshed = true;
        } catch {
          if (!settled) await pause(backoff(), ctl);   // the merchant's back end may be away for a moment
        }
        return;
      }
      // The service itself refused (problem+json): retrying cannot help.
      if (answer.problem && [400, 401, 403, 404].includes(answer.status)) {
        return finish(false, new PaymentStatusError(answer.problem.detail || answer.problem.title || "HTTP " + answer.status, answer.status, answer.problem));
      }
      // Anything else (a network error, a proxy's 502, the stream cap's 503) passes: retry later.
      await pause(backoff(answer.retryAfter), ctl);
    }

    async function run() {
      while (!settled) {
        // Offline, frozen or in the back-forward cache: hold nothing, wait for the page to come back.
        while (isPaused() && !settled) await new Promise((done) => { wake = done; });
        if (settled) return;
        const ctl = attempt = new AbortController();
        let answer;
        if (Date.now() < pollUntil || typeof EventSource === "undefined") {
          const sent = Date.now();
          answer = await longPoll(POLL_WAIT_S, ctl);
          answer.took = Date.now() - sent;
        } else {
          const result = await stream(ctl);
          if (result.why === "stopped" || result.why === "silent") continue;   // done, paused, or reopen at once
          if (result.why === "buffered") {
            pollUntil = Date.now() + pollFor;
            pollFor = Math.min(pollFor * 2, POLL_FOR_MAX_MS);
            continue;
          }
          if (result.delivered) {
            failures = streamMisses = 0;
            refreshed = false;
            pollFor = POLL_FOR_MS;
          }
          // A moment at random first, so that pages cut together do not all ask at once.
          if (result.why === "error") await pause(Math.random() * BACKOFF_MS, ctl);
          if (ctl.signal.aborted) continue;
          answer = await longPoll(0, ctl);
          // Streams that fail before their first event while the long-poll works: use the long-poll a while.
          if (answer.body && !result.delivered && ++streamMisses >= 2) pollUntil = Date.now() + pollFor;
        }
        if (settled || ctl.signal.aborted) continue;
        await handle(answer, ctl, Date.now() < pollUntil);
      }
    }

    // The page's life: each of these ends what is open now (a connection that
    // may be dead or hung, a backoff wait) and the loop starts afresh.
    function setPaused(reason, value) {
      paused[reason] = value;
      if (!value) failures = 0;   // back: try at once
      if (attempt) attempt.abort();
      if (wake) { const w = wake; wake = null; w(); }
    }
    const handlers = [
      [globalThis, "offline", () => setPaused("offline", true)],
      [globalThis, "online", () => setPaused("offline", false)],
      // A frozen page runs no code: close the connections rather than leave them unread.
      [globalThis.document, "freeze", () => setPaused("frozen", true)],
      [globalThis.document, "resume", () => setPaused("frozen", false)],
      // A page kept in the back-forward cache holds no connection either (an
      // open one could also keep it out of the cache); pageshow brings it back.
      [globalThis, "pagehide", () => setPaused("hidden", true)],
      [globalThis, "pageshow", (e) => { if (e.persisted) setPaused("hidden", false); }],
    ].filter(([target]) => target && target.addEventListener);
    const onAbort = () => finish(false, signal.reason);
    function removeListeners() {
      for (const [target, type, fn] of handlers) target.removeEventListener(type, fn);
      if (signal) signal.removeEventListener("abort", onAbort);
    }
    for (const [target, type, fn] of handlers) target.addEventListener(type, fn);
    if (signal) signal.addEventListener("abort", onAbort);
    run().catch((error) => finish(false, error));
  });
}

// Types of payment-status.js, the browser client of the payment-status service.

/** An order's status; `succeeded` and `failed` are terminal. */
export type PaymentStatus = "initiated" | "processing" | "succeeded" | "failed";

/** One accepted change of an order, as the stream and the long-poll carry it. */
export interface PaymentEvent {
  order_id: string;
  /** 1 for the order's creation, then one more for each change. */
  seq: number;
  status: PaymentStatus;
  previous: PaymentStatus | null;
  source: "api" | "webhook";
  event_id: string | null;
  reason: string | null;
  /** RFC 3339, UTC. */
  at: string;
}

export interface WatchPaymentOptions {
  /** The order's `stream_url`; a relative one is resolved against the service this module was loaded from. */
  streamUrl: string | URL;
  /** Called with every event of the order from seq 1, each once, in seq order, without a gap. */
  onEvent: (event: PaymentEvent) => void;
  /**
   * Called when the stream token has expired; resolves to a fresh stream URL
   * (the `stream_url` of `POST /v1/orders/{id}/stream-token`, which the
   * merchant's back end calls with its API token). Without it an expired
   * token rejects the watch with a `PaymentStatusError` of status 401.
   */
  refreshStreamUrl?: () => string | URL | Promise<string | URL>;
  /** The service's `PAYMENT_HEARTBEAT_SECONDS` (default 15): a stream silent for twice as long is reopened. */
  heartbeatSeconds?: number;
  /** Aborting it closes every connection at once and rejects the promise with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Watches one order until its status is final. Resolves with the terminal
 * event (`succeeded` or `failed`), after which nothing stays open or
 * scheduled. Rejects with `signal.reason` when aborted, and with a
 * `PaymentStatusError` when the service refuses for good (unknown order,
 * invalid token, an expired one without `refreshStreamUrl`).
 */
export function watchPayment(options: WatchPaymentOptions): Promise<PaymentEvent>;

/** A refusal that retrying cannot change. */
export class PaymentStatusError extends Error {
  readonly name: "PaymentStatusError";
  /** The HTTP status. */
  readonly status: number;
  /** The service's problem+json body, when it sent one. */
  readonly problem: { type: string; title: string; status: number; detail: string } | null;
}

import type {
  StreamRequest,
  StreamResponse,
  UnaryRequest,
  UnaryResponse,
} from "@connectrpc/connect";
import type { ReplayRules } from "../replay/auth-options.js";
import type { CallReplay, CallTarget } from "../replay/call.js";

export type Req = UnaryRequest | StreamRequest;
export type Res = UnaryResponse | StreamResponse;
export type Next = (req: Req) => Promise<Res>;

/** What the rules need to know of a Connect call. */
export function targetOf(req: Req): CallTarget {
  return {
    url: req.url.replace(/[?#].*$/, ""),
    method: `${req.service.typeName}/${req.method.name}`,
    signal: req.signal,
  };
}

/** Sends one attempt of `call`: its token, and a fresh proof when the token is bound to a key. */
export function send(rules: ReplayRules, call: CallReplay, req: Req, next: Next): Promise<Res> {
  req.header.set(rules.headerName, call.header());
  const proof = call.prove();
  if (proof === undefined) return next(req);
  return proof.then(({ headers }) => {
    for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
    return next(req);
  });
}

/** `send`, with a transport that throws at once turned into a rejection. */
export function sendSafely(
  rules: ReplayRules,
  call: CallReplay,
  req: Req,
  next: Next,
): Promise<Res> {
  try {
    return send(rules, call, req, next);
  } catch (error) {
    return Promise.reject(error);
  }
}

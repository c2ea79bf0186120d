import { arr, at, hcmOf, type Json, type JsonObject, obj, str } from "./envoy-yaml.js";

/** A local reply as Envoy would put it on the wire (HTTP/1.1 framing headers left out). */
export interface LocalReply {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: string;
}

/** What Envoy knows when a filter sends a local reply. */
export interface LocalReplyInput {
  /** The status the filter asked for, e.g. jwt_authn's 401. */
  status: number;
  /** The request's content-type, as the filter saw it; undefined when absent. */
  requestContentType: string | undefined;
  /**
   * The content-type the request arrived with, from which Envoy decides whether to answer
   * gRPC-shaped; default `requestContentType`. They differ once grpc_web has rewritten it.
   */
  originalContentType?: string | undefined;
  /** Other request headers, lower-case names, for `present_match` header filters. */
  requestHeaders?: Record<string, string>;
  /** The filter's details text, jwt_authn's "Jwt is missing" for example. */
  body: string;
  /** Headers the filter sets itself, such as jwt_authn's www-authenticate. */
  headers?: Record<string, string>;
}

/** The `local_reply_config.mappers` of the HTTP connection manager, in order; none if absent. */
export function localReplyMappersOf(config: JsonObject): JsonObject[] {
  const mappers = at(hcmOf(config), "local_reply_config", "mappers");
  if (mappers === undefined) return [];
  return arr(mappers, "local_reply_config.mappers").map((m) => obj(m, "mapper"));
}

/**
 * Whether an `AccessLogFilter` matches, for the filter kinds this config uses: `and_filter`,
 * `or_filter`, `status_code_filter` and `header_filter` with a `string_match`. Anything else
 * throws, so a config change that this model does not cover fails loudly instead of passing.
 */
export function filterMatches(filter: Json | undefined, input: LocalReplyInput): boolean {
  const f = obj(filter, "AccessLogFilter");
  const kinds = Object.keys(f);
  if (kinds.length !== 1) throw new TypeError(`AccessLogFilter must set one filter: ${kinds}`);
  const [kind] = kinds;
  switch (kind) {
    case "and_filter":
      return arr(at(f, kind, "filters"), "and_filter.filters").every((x) =>
        filterMatches(x, input),
      );
    case "or_filter":
      return arr(at(f, kind, "filters"), "or_filter.filters").some((x) => filterMatches(x, input));
    case "status_code_filter": {
      const comparison = obj(at(f, kind, "comparison"), "comparison");
      const value = Number(at(comparison, "value", "default_value") ?? 0);
      const op = comparison.op ?? "EQ";
      if (op === "EQ") return input.status === value;
      if (op === "GE") return input.status >= value;
      if (op === "LE") return input.status <= value;
      throw new TypeError(`unknown comparison op ${op}`);
    }
    case "header_filter":
      return headerMatches(obj(at(f, kind, "header"), "header_filter.header"), input);
    default:
      throw new TypeError(`filter kind ${kind} is not modelled in test/envoy/local-reply.ts`);
  }
}

function headerMatches(matcher: JsonObject, input: LocalReplyInput): boolean {
  const allowed = new Set(["name", "string_match", "present_match"]);
  for (const key of Object.keys(matcher)) {
    if (!allowed.has(key)) throw new TypeError(`HeaderMatcher.${key} is not modelled`);
  }
  const name = str(matcher.name, "HeaderMatcher.name").toLowerCase();
  if (matcher.present_match !== undefined) {
    if (matcher.string_match !== undefined) throw new TypeError("HeaderMatcher sets two matches");
    const present =
      name === "content-type"
        ? input.requestContentType !== undefined
        : name in (input.requestHeaders ?? {});
    return present === matcher.present_match;
  }
  if (name !== "content-type") {
    throw new TypeError("only content-type string matchers are modelled");
  }
  if (input.requestContentType === undefined) return false;
  const m = obj(matcher.string_match, "string_match");
  const fold = (s: string) => (m.ignore_case === true ? s.toLowerCase() : s);
  const actual = fold(input.requestContentType);
  for (const [key, value] of Object.entries(m)) {
    if (key === "ignore_case") continue;
    const expected = fold(str(value, `string_match.${key}`));
    if (key === "exact") return actual === expected;
    if (key === "prefix") return actual.startsWith(expected);
    if (key === "suffix") return actual.endsWith(expected);
    if (key === "contains") return actual.includes(expected);
    throw new TypeError(`string_match.${key} is not modelled`);
  }
  throw new TypeError("string_match has no pattern");
}

/** A static header value or body: `%` would start a substitution command, which is not modelled. */
function literal(value: Json | undefined, what: string): string {
  const text = str(value, what);
  if (text.includes("%")) throw new TypeError(`${what}: substitution commands are not modelled`);
  return text;
}

/**
 * The local reply Envoy sends for a request that is not gRPC (a gRPC-Web, Connect or JSON
 * request), following `Utility::sendLocalReply` and `LocalReplyImpl::rewrite`: the first matching
 * mapper may change the status, add headers and replace the body; an empty body goes out without
 * content-type and content-length, anything else as text/plain unless the format says otherwise.
 */
export function localReplyFor(config: JsonObject, input: LocalReplyInput): LocalReply {
  const original =
    "originalContentType" in input ? input.originalContentType : input.requestContentType;
  if (/^application\/grpc(\+|$)/.test(original ?? "")) {
    throw new TypeError("gRPC requests get trailers-only local replies, which are not modelled");
  }
  let status = input.status;
  const headers: Record<string, string> = { ...input.headers };
  let body = input.body;
  let contentType = "text/plain";
  const mapper = localReplyMappersOf(config).find((m) => filterMatches(m.filter, input));
  if (mapper) {
    if (mapper.status_code !== undefined) status = Number(mapper.status_code);
    for (const option of arr(mapper.headers_to_add ?? [], "headers_to_add")) {
      const action = at(option, "append_action");
      if (action !== "OVERWRITE_IF_EXISTS_OR_ADD") {
        throw new TypeError(`append_action ${action} is not modelled`);
      }
      const key = str(at(option, "header", "key"), "header.key").toLowerCase();
      headers[key] = literal(at(option, "header", "value"), `header ${key}`);
    }
    if (mapper.body !== undefined) body = literal(at(mapper.body, "inline_string"), "body");
    const format = mapper.body_format_override;
    if (format !== undefined) {
      body = literal(at(format, "text_format_source", "inline_string"), "body_format_override");
      const type = at(format, "content_type");
      if (type !== undefined) contentType = str(type, "content_type");
    }
  }
  if (body === "") {
    delete headers["content-type"];
  } else {
    headers["content-type"] = contentType;
  }
  return { status, headers, body };
}

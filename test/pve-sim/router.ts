/** Routes of the API: a method and a path template such as `/nodes/{node}/lxc/{vmid}/config`. */
import type { Identity } from "./auth.js";
import { validate, type ParamValue, type Schema } from "./schema.js";

export interface RouteContext {
  method: string;
  /** Path below /api2/json. */
  path: string;
  /** Values of the template's `{names}` (the path is URI-decoded before matching). */
  params: Record<string, string>;
  /** Query and body parameters, merged (body wins). */
  input: Record<string, unknown>;
  /** The authenticated caller (routes declared with `auth: false` get an anonymous identity). */
  identity: Identity;
}

export type Handler = (ctx: RouteContext) => unknown;

/**
 * A result with attributes beside `data` in the response body, as PVE's `set_result_attrib` adds them
 * (`total` of a task list or a task log).
 */
export class WithAttributes {
  constructor(
    readonly data: unknown,
    readonly attributes: Record<string, unknown>,
  ) {}
}

/** The JSON body of a successful call: `{data}`, plus the handler's result attributes. */
export function successBody(result: unknown): Record<string, unknown> {
  if (result instanceof WithAttributes) return { ...result.attributes, data: result.data ?? null };
  return { data: result ?? null };
}

export interface RouteOptions {
  /** Whether the route needs authentication (default true). */
  auth?: boolean;
}

interface Route {
  method: string;
  template: string;
  re: RegExp;
  names: string[];
  handler: Handler;
  auth: boolean;
}

export interface RouteMatch {
  handler: Handler;
  params: Record<string, string>;
  auth: boolean;
  template: string;
}

export class Router {
  private readonly routes: Route[] = [];

  /** Adds a route; a later route with the same method and template replaces the earlier one. */
  add(method: string, template: string, handler: Handler, opts: RouteOptions = {}): void {
    const names: string[] = [];
    const body = template
      .split("/")
      .map((seg) => {
        const m = /^\{(\w+)\}$/.exec(seg);
        if (!m) return seg.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
        names.push(m[1]!);
        return "([^/]+)";
      })
      .join("/");
    const route: Route = {
      method: method.toUpperCase(),
      template,
      re: new RegExp(`^${body}/?$`),
      names,
      handler,
      auth: opts.auth ?? true,
    };
    const i = this.routes.findIndex((r) => r.method === route.method && r.template === template);
    if (i >= 0) this.routes[i] = route;
    else this.routes.push(route);
  }

  get(template: string, handler: Handler, opts?: RouteOptions): void {
    this.add("GET", template, handler, opts);
  }

  post(template: string, handler: Handler, opts?: RouteOptions): void {
    this.add("POST", template, handler, opts);
  }

  put(template: string, handler: Handler, opts?: RouteOptions): void {
    this.add("PUT", template, handler, opts);
  }

  delete(template: string, handler: Handler, opts?: RouteOptions): void {
    this.add("DELETE", template, handler, opts);
  }

  match(method: string, path: string): RouteMatch | undefined {
    for (const r of this.routes) {
      if (r.method !== method) continue;
      const m = r.re.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = m[i + 1]!));
      return { handler: r.handler, params, auth: r.auth, template: r.template };
    }
    return undefined;
  }
}

/**
 * Checks a route's parameters against `schema`, path parameters included (declared as strings unless the
 * schema says otherwise), as PVE's API schema covers both. Throws a 400 PveError naming each bad parameter.
 */
export function routeInput(c: RouteContext, schema: Schema): Record<string, ParamValue> {
  const properties = { ...schema.properties };
  for (const name of Object.keys(c.params)) properties[name] ??= { type: "string" };
  return validate({ ...schema, properties }, { ...c.input, ...c.params });
}

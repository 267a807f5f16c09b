/**
 * Parameters as Proxmox takes them: form-urlencoded, booleans as 1/0. Undefined and null values are left
 * out of the encoding (the caller's object is never modified); an array repeats its key.
 */
export type ParamValue = string | number | boolean | null | undefined | ReadonlyArray<string | number>;
export type Params = Readonly<Record<string, ParamValue>>;

function scalar(v: string | number | boolean): string {
  if (typeof v === "boolean") return v ? "1" : "0";
  return String(v);
}

export function encodeParams(params: Params | undefined): string {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value))
      for (const v of value as ReadonlyArray<string | number>) out.append(key, scalar(v));
    else out.append(key, scalar(value as string | number | boolean));
  }
  return out.toString();
}

/** GET and DELETE carry their parameters in the query string; POST and PUT in the body. */
export function paramsInQuery(method: string): boolean {
  const m = method.toUpperCase();
  return m === "GET" || m === "DELETE";
}

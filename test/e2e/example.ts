// The LdapPair an end-to-end test or the demo applies: the example of
// examples/ldappair.yaml pointed at the simulated site (its API, CA, DNS and
// the Secrets the harness creates), with the two servers on different nodes
// and a settle time on the world's time scale.
import { API_VERSION, KIND } from "../../src/api/ldappair.js";

/** Names of the Secrets the harness creates and the example refers to. */
export const SECRETS = {
  token: { name: "pve-token", tokenIdKey: "tokenId", tokenSecretKey: "tokenSecret" },
  database: { name: "manager-db", key: "uri" },
  ca: { name: "pve-ca", key: "ca.crt" },
} as const;

/** A pinned tag: Proxmox will not pull a mutable tag again under the same volume name. */
export const EXAMPLE_IMAGE = "ghcr.io/mieweb/ldap-gateway:1.4.0";
export const EXAMPLE_NAME = "site-a";
export const EXAMPLE_DOMAIN = "example.com";

/** What the builder needs to know about the world. */
export interface SiteFacts {
  namespace: string;
  /** https://HOST:PORT of the Proxmox API. */
  proxmoxUrl: string;
  /** Two nodes at least: the servers go on the first two. */
  nodes: readonly string[];
  /** The site DNS's address (what a node's dns1 holds). */
  dnsAddress: string;
  settleTime: string;
}

/** A partial object merged into the example; `undefined` removes a field, arrays replace. */
export type Overrides = { [key: string]: unknown };

export interface ExampleLdapPair {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: Record<string, unknown>;
}

export function exampleLdapPair(site: SiteFacts, overrides: Overrides = {}): ExampleLdapPair {
  const [first, second] = site.nodes;
  if (!first || !second) throw new Error("the example puts its servers on two nodes; the world has fewer");
  const base: ExampleLdapPair = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: EXAMPLE_NAME, namespace: site.namespace },
    spec: {
      domain: EXAMPLE_DOMAIN,
      image: EXAMPLE_IMAGE,
      servers: [
        { name: "ldap1", node: first },
        { name: "ldap2", node: second },
      ],
      proxmox: {
        url: site.proxmoxUrl,
        node: first,
        credentialsSecretRef: { ...SECRETS.token },
        tls: { caSecretRef: { ...SECRETS.ca } },
      },
      database: { uriSecretRef: { ...SECRETS.database } },
      nodeDns: { nameserver: site.dnsAddress, searchDomain: EXAMPLE_DOMAIN, nodes: [first, second] },
      rollout: { settleTime: site.settleTime },
    },
  };
  return merge(base, overrides) as ExampleLdapPair;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep merge of plain objects; an override's array or scalar replaces, `undefined` deletes. */
export function merge(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return structuredClone(override);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) delete out[key];
    else out[key] = key in out ? merge(out[key], value) : structuredClone(value);
  }
  return out;
}

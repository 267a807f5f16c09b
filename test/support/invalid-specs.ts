// Invalid LdapPairs and what must be said about them. The same table is
// checked against the operator's own validation (test/api) and against the
// real API server with the generated CRD (test/controlplane).
import { MINIMAL_SPEC } from "./spec.js";

export interface InvalidCase {
  title: string;
  spec: Record<string, unknown>;
  /** The field the error names, in kubectl's notation. */
  field: string;
  /** A part of the message that both the API server and the operator give. */
  message: RegExp;
}

type Spec = Record<string, unknown>;
const base = (): Spec => structuredClone(MINIMAL_SPEC) as Spec;
const withSpec = (change: (s: Spec) => void): Spec => {
  const s = base();
  change(s);
  return s;
};
const proxmox = (s: Spec) => s.proxmox as Spec;
const credentials = (s: Spec) => proxmox(s).credentialsSecretRef as Spec;
const servers = (...networks: Spec[]) => networks.map((network, i) => ({ name: `ldap${i + 1}`, network }));

export const INVALID_SPECS: InvalidCase[] = [
  {
    title: "malformed domain (empty label)",
    spec: { ...base(), domain: "example..com" },
    field: "spec.domain",
    message: /should match/,
  },
  {
    title: "domain with an underscore",
    spec: { ...base(), domain: "ex_ample.com" },
    field: "spec.domain",
    message: /should match/,
  },
  {
    title: "neither domain nor base DN",
    spec: withSpec((s) => delete s.domain),
    field: "spec",
    message: /set spec\.domain or spec\.baseDN/,
  },
  {
    title: "malformed base DN",
    spec: { ...base(), baseDN: "example.com" },
    field: "spec.baseDN",
    message: /should match/,
  },
  {
    title: "image without a tag",
    spec: { ...base(), image: "ghcr.io/mieweb/ldap-gateway" },
    field: "spec.image",
    message: /image must carry a tag/,
  },
  {
    title: "image on a registry port without a tag",
    spec: { ...base(), image: "registry.local:5000/ldap-gateway" },
    field: "spec.image",
    message: /image must carry a tag/,
  },
  {
    title: "image by digest",
    spec: { ...base(), image: "ghcr.io/mieweb/ldap-gateway@sha256:" + "a".repeat(64) },
    field: "spec.image",
    message: /not by digest: Proxmox refuses digests/,
  },
  {
    title: "image by tag and digest",
    spec: { ...base(), image: "ghcr.io/mieweb/ldap-gateway:1.4.0@sha256:" + "a".repeat(64) },
    field: "spec.image",
    message: /not by digest/,
  },
  {
    title: "equal server names",
    spec: { ...base(), servers: [{ name: "ldap1" }, { name: "ldap1" }] },
    field: "spec.servers",
    message: /the two servers must have different names/,
  },
  {
    title: "invalid hostname",
    spec: { ...base(), servers: [{ name: "LDAP_1" }, { name: "ldap2" }] },
    field: "spec.servers[0].name",
    message: /should match/,
  },
  {
    title: "hostname ending in a hyphen",
    spec: { ...base(), servers: [{ name: "ldap1" }, { name: "ldap2-" }] },
    field: "spec.servers[1].name",
    message: /should match/,
  },
  {
    title: "three servers",
    spec: { ...base(), servers: [{ name: "ldap1" }, { name: "ldap2" }, { name: "ldap3" }] },
    field: "spec.servers",
    message: /must have at most 2 items/,
  },
  {
    title: "one server",
    spec: { ...base(), servers: [{ name: "ldap1" }] },
    field: "spec.servers",
    message: /should have at least 2 items/,
  },
  {
    title: "network gateway without an address",
    spec: { ...base(), servers: [{ name: "ldap1", network: { gateway: "10.0.0.1" } }, { name: "ldap2" }] },
    field: "spec.servers[0].network",
    message: /network\.gateway requires network\.ipv4/,
  },
  {
    title: "address without a prefix length",
    spec: { ...base(), servers: [{ name: "ldap1", network: { ipv4: "10.0.0.5" } }, { name: "ldap2" }] },
    field: "spec.servers[0].network.ipv4",
    message: /should match/,
  },
  {
    title: "zero cores",
    spec: { ...base(), resources: { cores: 0 } },
    field: "spec.resources.cores",
    message: /greater than or equal to 1/,
  },
  {
    title: "negative memory",
    spec: { ...base(), resources: { memoryMiB: -512 } },
    field: "spec.resources.memoryMiB",
    message: /greater than or equal to 64/,
  },
  {
    title: "zero disk",
    spec: { ...base(), resources: { diskGiB: 0 } },
    field: "spec.resources.diskGiB",
    message: /greater than or equal to 1/,
  },
  {
    title: "unknown deletion policy",
    spec: { ...base(), deletionPolicy: "Keep" },
    field: "spec.deletionPolicy",
    message: /supported values: "Delete", "Retain"/,
  },
  {
    title: "unknown rollout strategy",
    spec: { ...base(), rollout: { strategy: "BlueGreen" } },
    field: "spec.rollout.strategy",
    message: /supported values: "RemoveThenCreate", "CreateThenSwap"/,
  },
  {
    title: "unknown sync scope",
    spec: { ...base(), realm: { syncScope: "all" } },
    field: "spec.realm.syncScope",
    message: /supported values: "users", "groups", "both"/,
  },
  {
    title: "malformed duration",
    spec: { ...base(), rollout: { healthGateTimeout: "5 minutes" } },
    field: "spec.rollout.healthGateTimeout",
    message: /should match/,
  },
  {
    title: "a restart stamp that is no timestamp",
    spec: { ...base(), rollout: { restartedAt: "yesterday" } },
    field: "spec.rollout.restartedAt",
    message: /should match/,
  },
  {
    title: "non-https Proxmox URL",
    spec: withSpec((s) => (proxmox(s).url = "http://pve.example.com:8006")),
    field: "spec.proxmox.url",
    message: /proxmox\.url must be an https:\/\/ URL/,
  },
  {
    title: "Proxmox URL with credentials",
    spec: withSpec((s) => (proxmox(s).url = "https://root:secret@pve.example.com:8006")),
    field: "spec.proxmox.url",
    message: /without credentials/,
  },
  {
    title: "CA and insecure-skip-verify together",
    spec: withSpec((s) => (proxmox(s).tls = { caSecretRef: { name: "pve-ca" }, insecureSkipVerify: true })),
    field: "spec.proxmox.tls",
    message: /set either tls\.caSecretRef or tls\.insecureSkipVerify, not both/,
  },
  {
    title: "missing Proxmox credentials Secret reference",
    spec: withSpec((s) => delete proxmox(s).credentialsSecretRef),
    field: "spec.proxmox.credentialsSecretRef",
    message: /Required value/,
  },
  {
    title: "Secret reference without a name",
    spec: withSpec((s) => (proxmox(s).credentialsSecretRef = { tokenIdKey: "id" })),
    field: "spec.proxmox.credentialsSecretRef.name",
    message: /Required value/,
  },
  {
    title: "missing database Secret reference",
    spec: { ...base(), database: {} },
    field: "spec.database.uriSecretRef",
    message: /Required value/,
  },
  {
    title: "missing Proxmox node",
    spec: withSpec((s) => delete proxmox(s).node),
    field: "spec.proxmox.node",
    message: /Required value/,
  },
  {
    title: "reserved extra env name",
    spec: { ...base(), extraEnv: [{ name: "SQL_URI", value: "postgres://x" }] },
    field: "spec.extraEnv[0]",
    message: /extraEnv cannot set a variable the operator owns/,
  },
  {
    title: "reserved extra env name PORT",
    spec: { ...base(), extraEnv: [{ name: "PORT", value: "389" }] },
    field: "spec.extraEnv[0]",
    message: /extraEnv cannot set a variable the operator owns/,
  },
  {
    title: "malformed extra env name",
    spec: { ...base(), extraEnv: [{ name: "1BAD-NAME", value: "x" }] },
    field: "spec.extraEnv[0].name",
    message: /should match/,
  },
  {
    title: "extra env value with a newline",
    spec: { ...base(), extraEnv: [{ name: "MOTD", value: "a\nb" }] },
    field: "spec.extraEnv[0].value",
    message: /should match/,
  },
  {
    title: "realm name over 32 characters",
    spec: { ...base(), realm: { name: "r".repeat(33) } },
    field: "spec.realm.name",
    message: /may not be more than 32/,
  },
  {
    title: "realm name starting with a digit",
    spec: { ...base(), realm: { name: "1ldap" } },
    field: "spec.realm.name",
    message: /should match/,
  },
  {
    title: "notification URL that is not http(s)",
    spec: { ...base(), notifications: { url: "ftp://push.example.com/x" } },
    field: "spec.notifications.url",
    message: /should match/,
  },
  {
    title: "invalid DNS nameserver",
    spec: { ...base(), nodeDns: { nameserver: "10.0.0.256" } },
    field: "spec.nodeDns.nameserver",
    message: /should match/,
  },
  {
    title: "node DNS without a search domain or spec.domain",
    spec: withSpec((s) => {
      delete s.domain;
      s.baseDN = "dc=example,dc=com";
      s.nodeDns = { nameserver: "10.0.0.2" };
    }),
    field: "spec",
    message: /nodeDns\.searchDomain is required when spec\.domain is not set/,
  },
  {
    title: "a node twice in nodeDns.nodes (a set)",
    spec: { ...base(), nodeDns: { nameserver: "10.0.0.2", nodes: ["pve1", "pve2", "pve1"] } },
    field: "spec.nodeDns.nodes[2]",
    message: /Duplicate value: "pve1"/,
  },
  {
    title: "null for a required field without a default (dropped, then missing)",
    spec: withSpec((s) => (proxmox(s).node = null)),
    field: "spec.proxmox.node",
    message: /Required value/,
  },
  {
    title: "a sync interval past Node's timer limit (30 days)",
    spec: { ...base(), realm: { syncInterval: "720h" } },
    field: "spec.realm.syncInterval",
    message: /must be at most 596h31m23\.647s \(2\^31-1 ms, about 24\.8 days\)/,
  },
  {
    title: "a sync interval one millisecond past Node's timer limit",
    spec: { ...base(), realm: { syncInterval: "2147483648ms" } },
    field: "spec.realm.syncInterval",
    message: /must be at most 596h31m23\.647s/,
  },
  {
    title: "a duration of four components, each as large as the pattern allows",
    spec: { ...base(), realm: { syncInterval: "99999h99999h99999h99999h" } },
    field: "spec.realm.syncInterval",
    message: /must be at most 596h31m23\.647s/,
  },
  {
    title: "a duration with more hour digits than can be parsed safely",
    spec: { ...base(), realm: { syncInterval: "100000h" } },
    field: "spec.realm.syncInterval",
    message: /should match/,
  },
  {
    title: "a health gate timeout over an hour",
    spec: { ...base(), rollout: { healthGateTimeout: "61m" } },
    field: "spec.rollout.healthGateTimeout",
    message: /must be at most 1h: a gateway answers within seconds/,
  },
  {
    title: "a settle time over an hour",
    spec: { ...base(), rollout: { settleTime: "3600001ms" } },
    field: "spec.rollout.settleTime",
    message: /must be at most 1h: it only has to outlast SSSD's 30s retry/,
  },
  {
    title: "a progress deadline over a day",
    spec: { ...base(), rollout: { progressDeadline: "25h" } },
    field: "spec.rollout.progressDeadline",
    message: /must be at most 24h: a rollout step waits for seconds or minutes/,
  },
  {
    title: "a progress deadline that is not a duration",
    spec: { ...base(), rollout: { progressDeadline: "ten minutes" } },
    field: "spec.rollout.progressDeadline",
    message: /should match/,
  },
  {
    title: "groupMembers as a string",
    spec: { ...base(), groupMembers: "yes" },
    field: "spec.groupMembers",
    message: /must be of type boolean/,
  },
  {
    title: "a token id key that no Secret can have",
    spec: withSpec((s) => (credentials(s).tokenIdKey = "a b/c")),
    field: "spec.proxmox.credentialsSecretRef.tokenIdKey",
    message: /should match/,
  },
  {
    title: "a token secret key starting with '..'",
    spec: withSpec((s) => (credentials(s).tokenSecretKey = "..data")),
    field: "spec.proxmox.credentialsSecretRef.tokenSecretKey",
    message: /a Secret key cannot be '\.' or start with '\.\.'/,
  },
  {
    title: "a database URI key of '.'",
    spec: { ...base(), database: { uriSecretRef: { name: "manager-db", key: "." } } },
    field: "spec.database.uriSecretRef.key",
    message: /a Secret key cannot be '\.'/,
  },
  {
    title: "a credentials Secret name that is not a DNS subdomain",
    spec: withSpec((s) => (credentials(s).name = "PVE_Token")),
    field: "spec.proxmox.credentialsSecretRef.name",
    message: /should match/,
  },

  {
    title: "a CA Secret name ending in a dot",
    spec: withSpec((s) => (proxmox(s).tls = { caSecretRef: { name: "pve-ca." } })),
    field: "spec.proxmox.tls.caSecretRef.name",
    message: /should match/,
  },
  {
    title: "both servers on the same static address",
    spec: { ...base(), servers: servers({ ipv4: "10.0.0.5/24" }, { ipv4: "10.0.0.5/24" }) },
    field: "spec.servers",
    message: /the two servers must not have the same static address/,
  },
  {
    title: "both servers on the same static address with different prefix lengths",
    spec: { ...base(), servers: servers({ ipv4: "10.0.0.5/24" }, { ipv4: "10.0.0.5/16" }) },
    field: "spec.servers",
    message: /must not have the same static address \(network\.ipv4\)/,
  },
];

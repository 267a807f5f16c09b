// Writes the LdapPair CRD generated from src/api/ldappair.ts to crds/.
import { writeFileSync } from "node:fs";
import { CRD_FILE, renderCrdYaml } from "../src/api/crd.js";

writeFileSync(CRD_FILE, renderCrdYaml());
console.log(`wrote ${CRD_FILE}`);

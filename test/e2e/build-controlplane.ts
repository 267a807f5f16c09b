// Builds the test control plane (kube-apiserver, etcd) when it is not cached
// yet. The demo runs this as a child so that it can show the build's progress
// while Go compiles for minutes: the build itself blocks its process.
import { ensureBinaries } from "../testenv/binaries.js";

const binaries = ensureBinaries({ log: (line) => console.log(line) });
console.log(`control plane: kube-apiserver ${binaries.kubernetesVersion}, etcd ${binaries.etcdVersion}`);

// Finds out for real, in a short-lived child of this same runtime, whether two node:net or
// node:dgram sockets bind one port with reusePort. A child is used because binding is
// asynchronous there and capabilities() must answer synchronously; it runs once, lazily.

import { spawnSync } from "node:child_process";
import process from "node:process";

const SCRIPTS = {
  tcp: `const net=require("net");const a=net.createServer();a.on("error",()=>process.exit(3));
a.listen({host:"127.0.0.1",port:0,reusePort:true,exclusive:true},()=>{const b=net.createServer();
b.on("error",()=>{a.close();process.stdout.write("no")});
b.listen({host:"127.0.0.1",port:a.address().port,reusePort:true,exclusive:true},()=>{
process.stdout.write("yes");a.close();b.close()})});`,
  udp: `const dgram=require("dgram");const a=dgram.createSocket({type:"udp4",reusePort:true});
a.on("error",()=>process.exit(3));a.bind(0,"127.0.0.1",()=>{const b=dgram.createSocket({type:"udp4",reusePort:true});
b.on("error",()=>{a.close();process.stdout.write("no")});b.bind(a.address().port,"127.0.0.1",()=>{
process.stdout.write("yes");a.close();b.close()})});`,
};

/**
 * Whether a second socket binds the port of a first with reusePort, in a child process.
 *
 * @param transport Which kind of socket to try.
 * @returns `true` only if the child saw both binds succeed.
 */
export function reusePortBindsInChild(transport: "tcp" | "udp"): boolean {
  const child = spawnSync(process.execPath, ["-e", SCRIPTS[transport]], {
    encoding: "utf8",
    timeout: 10_000,
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  return child.status === 0 && child.stdout === "yes";
}

// HTTPS for a supervisor's workers: the certificate chain and private key files (PEM). The
// primary checks the option (checkTls: its shape, absolute paths, files that read and hold what
// they should); each worker reads the files as it starts (readTls), so a reload, which starts
// new workers, serves whatever the files hold then: how certificates rotate.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

/** Where the certificate chain and the private key are: PEM files. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** What the files hold: the certificate chain and the private key, PEM text. */
export interface TlsPem {
  readonly cert: string;
  readonly key: string;
}

const CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
const KEY = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/;

/** Why reading failed, in words, from a Node-style error code. */
function readFailure(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === "ENOENT") return "it does not exist (ENOENT)";
  if (code === "EACCES" || code === "EPERM") return `permission denied (${code})`;
  if (code === "EISDIR") return "it is a folder (EISDIR)";
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === "string" ? `${message} (${code})` : message;
}

/** The text of `file` (the option's `field`), or an Error naming both. */
function readPem(field: "cert" | "key", file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`Cannot serve HTTPS as 'tls.${field}' file ${file} cannot be read: ${readFailure(err)}`, {
      cause: err,
    });
  }
}

/**
 * Reads and checks the certificate chain and private key files: both readable, PEM, parsed
 * by the runtime's crypto, and the key the certificate's.
 *
 * @param files The files (`WorkerSpec.tls`).
 * @returns Their PEM text, as Deno.serve, Bun.serve and node:http2 take it.
 * @throws {Error} Naming the field (`tls.cert`, `tls.key`) and the file.
 */
export function readTls(files: TlsFiles): TlsPem {
  const cert = readPem("cert", files.cert);
  const key = readPem("key", files.key);
  const certAt = `'tls.cert' file ${files.cert}`;
  const keyAt = `'tls.key' file ${files.key}`;
  if (!CERT.test(cert)) {
    throw new Error(`Cannot serve HTTPS as ${certAt} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  const pemKey = KEY.exec(key);
  if (!pemKey) throw new Error(`Cannot serve HTTPS as ${keyAt} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`);
  if (pemKey[1] === "ENCRYPTED PRIVATE KEY") {
    throw new Error(`Cannot serve HTTPS as ${keyAt} holds an encrypted private key: give it unencrypted`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`Cannot serve HTTPS as ${certAt} holds a certificate that cannot be read: ${message(err)}`, {
      cause: err,
    });
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`Cannot serve HTTPS as ${keyAt} holds a private key that cannot be read: ${message(err)}`, {
      cause: err,
    });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new Error(`Cannot serve HTTPS as ${keyAt} is not the key of the certificate in ${certAt}`);
  }
  return { cert, key };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A value as a message shows it. */
function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return "an object";
    }
  }
  return String(value);
}

/**
 * Checks supervise()'s `tls` option in the primary: an object with `cert` and `key` file paths
 * (made absolute, so workers read the same files wherever they run), files that can be read and
 * hold a PEM certificate and its PEM private key. Workers read the files again as they start.
 *
 * @param tls The option as given.
 * @returns The absolute paths, or undefined when `tls` is.
 * @throws {TypeError} Naming the field (`tls`, `tls.cert`, `tls.key`) and the value or file.
 */
export function checkTls(tls: unknown): TlsFiles | undefined {
  if (tls === undefined) return undefined;
  if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
    throw new TypeError(
      `Cannot serve HTTPS as 'tls' must be an object with 'cert' and 'key' file paths: current value is ${show(tls)}`,
    );
  }
  const given = tls as Record<string, unknown>;
  const path = (field: "cert" | "key"): string => {
    const value = given[field];
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`Cannot serve HTTPS as 'tls.${field}' must be a file path: current value is ${show(value)}`);
    }
    return resolve(value);
  };
  const files = { cert: path("cert"), key: path("key") };
  try {
    readTls(files);
  } catch (err) {
    throw new TypeError((err as Error).message, { cause: err });
  }
  return files;
}

// A self-signed TLS certificate for local RTMPS (`npm start`, tests): made with the openssl CLI,
// because node:crypto can make key pairs but not X.509 certificates. Valid for localhost,
// 127.0.0.1 and ::1; kept in a directory and reused until it is about to expire.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

const DAYS = 365;
/** A certificate with less than this left is made again. */
const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;

/** Whether the openssl CLI is there (`openssl version`). */
export function hasOpenssl(): boolean {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * The certificate and key in `dir` (`rtmps-cert.pem`, `rtmps-key.pem`, the key mode 600), made
 * when missing or close to expiry. Throws when openssl is missing or fails; callers without
 * openssl should check hasOpenssl() first and run without RTMPS.
 */
export function ensureSelfSignedCertificate(dir: string, commonName = 'localhost'): CertificateFiles {
  const files = { certFile: join(dir, 'rtmps-cert.pem'), keyFile: join(dir, 'rtmps-key.pem') };
  if (existsSync(files.certFile) && existsSync(files.keyFile)) {
    try {
      const cert = new X509Certificate(readFileSync(files.certFile));
      if (Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS) return files;
    } catch {
      // Unreadable: made again below.
    }
  }
  mkdirSync(dir, { recursive: true });
  // RSA 2048 rather than an EC key: every encoder's TLS stack (OBS's mbedTLS among them) takes it.
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      String(DAYS),
      '-keyout',
      files.keyFile,
      '-out',
      files.certFile,
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ],
    { encoding: 'utf8' },
  );
  if (r.error || r.status !== 0) throw new Error(`openssl could not make a certificate: ${r.error?.message ?? r.stderr.trim()}`);
  chmodSync(files.keyFile, 0o600);
  return files;
}

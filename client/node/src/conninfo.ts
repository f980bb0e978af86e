// Connection settings: from a pg.Pool, a pg connection config or a
// connection string, to the list of servers to try in order.
//
// node-postgres connects to one host. libpq, and so the rest of this
// project, also takes several: `host=db1,db2 port=5432,5433 ...` or
// `postgresql://db1:5432,db2:5433/app?target_session_attrs=read-write`.
// Both forms are read here and turned into one single-host pg config per
// server; the registrar tries them in order and keeps the first that is not a
// standby (connect.ts).

import type { ClientConfig } from 'pg';

export interface HostPort {
  readonly host: string;
  readonly port: string | null;
}

/** A connection string split into its servers and the rest (libpq keyword names). */
export interface ParsedConnectionString {
  readonly hosts: readonly HostPort[];
  readonly user: string | null;
  readonly password: string | null;
  readonly dbname: string | null;
  /** Every other keyword (sslmode, application_name, target_session_attrs, ...). */
  readonly params: Readonly<Record<string, string>>;
}

/** One server to try. */
export interface Target {
  readonly config: ClientConfig;
  /** host:port, for messages. */
  readonly label: string;
}

function splitList(value: string | null | undefined): string[] {
  if (value === null || value === undefined || value === '') return [];
  return value.split(',').map((s) => s.trim());
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// libpq's keyword form: key = value pairs separated by white space; a value is
// either single-quoted (\' and \\ escaped) or runs to the next white space
// (a backslash escapes the next character).
function parseKeywords(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const n = s.length;
  const space = (c: string | undefined) => c !== undefined && /\s/.test(c);
  while (i < n) {
    while (space(s[i])) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && s[i] !== '=' && !space(s[i])) i++;
    const key = s.slice(keyStart, i);
    while (space(s[i])) i++;
    if (s[i] !== '=') throw new Error(`missing "=" after "${key}" in connection info string`);
    i++;
    while (space(s[i])) i++;
    let value = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= n) throw new Error('unterminated quoted string in connection info string');
        const c = s[i] as string;
        if (c === '\\' && i + 1 < n) {
          value += s[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < n && !space(s[i])) {
        if (s[i] === '\\' && i + 1 < n) {
          value += s[i + 1];
          i += 2;
        } else {
          value += s[i];
          i++;
        }
      }
    }
    if (key === '') throw new Error('empty keyword in connection info string');
    out[key] = value;
  }
  return out;
}

// One host of a URI's host list: [v6]:port, host:port or host.
function parseUriHost(s: string): HostPort {
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw new Error(`invalid IPv6 address in connection URI: ${s}`);
    const rest = s.slice(close + 1);
    return { host: s.slice(1, close), port: rest.startsWith(':') && rest.length > 1 ? rest.slice(1) : null };
  }
  const colon = s.lastIndexOf(':');
  if (colon >= 0) return { host: decode(s.slice(0, colon)), port: s.slice(colon + 1) || null };
  return { host: decode(s), port: null };
}

function isUri(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/** Parses a libpq connection string: URI or keyword form, one host or several. */
export function parseConnectionString(s: string): ParsedConnectionString {
  let hosts: HostPort[];
  let user: string | null = null;
  let password: string | null = null;
  let dbname: string | null = null;
  const params: Record<string, string> = {};
  if (isUri(s)) {
    const m = /^postgres(?:ql)?:\/\/([^/?#]*)([^?#]*)(\?[^#]*)?/i.exec(s);
    if (m === null) throw new Error('invalid connection URI');
    const authority = m[1] ?? '';
    const path = m[2] ?? '';
    const at = authority.lastIndexOf('@');
    const userinfo = at >= 0 ? authority.slice(0, at) : null;
    const hostlist = at >= 0 ? authority.slice(at + 1) : authority;
    if (userinfo !== null) {
      const colon = userinfo.indexOf(':');
      user = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo) || null;
      password = colon >= 0 ? decode(userinfo.slice(colon + 1)) : null;
    }
    // Split on commas outside brackets.
    const parts: string[] = [];
    let depth = 0;
    let cur = '';
    for (const c of hostlist) {
      if (c === '[') depth++;
      if (c === ']') depth--;
      if (c === ',' && depth === 0) {
        parts.push(cur);
        cur = '';
      } else {
        cur += c;
      }
    }
    parts.push(cur);
    hosts = hostlist === '' ? [] : parts.map(parseUriHost);
    if (path.length > 1) dbname = decode(path.slice(1));
    for (const [k, v] of new URLSearchParams((m[3] ?? '').slice(1))) params[k] = v;
  } else {
    const kw = parseKeywords(s);
    for (const [k, v] of Object.entries(kw)) params[k] = v;
    hosts = [];
  }
  // host and port keywords (also allowed in a URI's query) hold lists.
  const hostParam = params['host'] ?? params['hostaddr'];
  if (hostParam !== undefined) {
    hosts = splitList(hostParam).map((h) => ({ host: h, port: null }));
  }
  delete params['host'];
  delete params['hostaddr'];
  const ports = splitList(params['port']);
  delete params['port'];
  if (ports.length > 0) {
    if (hosts.length === 0) hosts = [{ host: '', port: null }];
    if (ports.length !== 1 && ports.length !== hosts.length) {
      throw new Error(`could not match ${ports.length} port numbers to ${hosts.length} hosts`);
    }
    hosts = hosts.map((h, i) => ({ host: h.host, port: (ports.length === 1 ? ports[0] : ports[i]) ?? h.port }));
  }
  if (params['user'] !== undefined) user = params['user'];
  if (params['password'] !== undefined) password = params['password'];
  if (params['dbname'] !== undefined) dbname = params['dbname'];
  delete params['user'];
  delete params['password'];
  delete params['dbname'];
  return { hosts, user, password, dbname, params };
}

function hostLabel(host: string | undefined, port: string | number | undefined): string {
  const h = host === undefined || host === '' ? '(default host)' : host;
  return port === undefined || port === '' ? h : `${h}:${port}`;
}

// A single-host URI that node-postgres parses itself (so that sslmode,
// sslrootcert and the like mean what they mean to node-postgres). A Unix
// socket directory goes in the query, as node-postgres reads it there.
function singleHostUri(p: ParsedConnectionString, h: HostPort): string {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(p.params)) {
    if (k === 'connect_timeout' || k === 'target_session_attrs') continue;
    query.set(k, v);
  }
  let authorityHost = '';
  if (h.host.startsWith('/')) {
    query.set('host', h.host);
    authorityHost = 'localhost';
  } else if (h.host.includes(':')) {
    authorityHost = `[${h.host}]`;
  } else {
    authorityHost = encodeURIComponent(h.host);
  }
  let userinfo = '';
  if (p.user !== null) {
    userinfo = encodeURIComponent(p.user);
    if (p.password !== null) userinfo += ':' + encodeURIComponent(p.password);
    userinfo += '@';
  } else if (p.password !== null) {
    userinfo = ':' + encodeURIComponent(p.password) + '@';
  }
  const port = h.port !== null && h.port !== '' ? `:${h.port}` : '';
  const db = p.dbname !== null ? '/' + encodeURIComponent(p.dbname) : '';
  const qs = query.toString();
  return `postgresql://${userinfo}${authorityHost}${port}${db}${qs ? '?' + qs : ''}`;
}

/**
 * The servers to try, in order, for a pg connection config (a pg.Pool's
 * options, or what the application passed). A `connectionString` in either
 * libpq form, a `host` (or PGHOST) with commas, or a keyword-form string all
 * give one target per host; anything else is passed to node-postgres as is.
 */
export function targetsFor(config: ClientConfig, env: NodeJS.ProcessEnv = process.env): Target[] {
  const cs = config.connectionString;
  if (typeof cs === 'string' && cs !== '') {
    const parsed = parseConnectionString(cs);
    const rest: ClientConfig = { ...config };
    delete rest.connectionString;
    if (
      isUri(cs) &&
      parsed.hosts.length <= 1 &&
      (parsed.hosts[0]?.host ?? '') !== '' &&
      !(parsed.hosts[0]?.host ?? '').startsWith('/')
    ) {
      return [{ config: { ...config }, label: hostLabel(parsed.hosts[0]?.host, parsed.hosts[0]?.port ?? undefined) }];
    }
    const timeout = parsed.params['connect_timeout'];
    if (timeout !== undefined && rest.connectionTimeoutMillis === undefined && Number(timeout) > 0) {
      rest.connectionTimeoutMillis = Number(timeout) * 1000;
    }
    const hosts = parsed.hosts.length > 0 ? parsed.hosts : [{ host: '', port: null }];
    return hosts.map((h) => {
      const uri = singleHostUri(parsed, h);
      // Fields the string does not give come from the config, then PG*.
      const c: ClientConfig = { ...rest, connectionString: uri };
      if (h.host === '') {
        delete c.connectionString;
        const alone = { ...parsed, hosts: [] };
        Object.assign(c, configFromParsed(alone));
        if (h.port !== null) c.port = Number(h.port);
      }
      return { config: c, label: hostLabel(h.host || config.host, h.port ?? config.port) };
    });
  }
  const hostValue = config.host ?? env['PGHOST'];
  const hosts = splitList(hostValue);
  if (hosts.length <= 1) return [{ config: { ...config }, label: hostLabel(hostValue, config.port ?? env['PGPORT']) }];
  const portValue = config.port !== undefined ? String(config.port) : env['PGPORT'];
  const ports = splitList(portValue);
  if (ports.length > 1 && ports.length !== hosts.length) {
    throw new Error(`could not match ${ports.length} port numbers to ${hosts.length} hosts`);
  }
  return hosts.map((host, i) => {
    const port = ports.length === 0 ? undefined : ports.length === 1 ? ports[0] : ports[i];
    const c: ClientConfig = { ...config, host };
    if (port !== undefined && port !== '') c.port = Number(port);
    else delete c.port;
    return { config: c, label: hostLabel(host, port) };
  });
}

// A keyword-form string without a host: its fields as a pg config (the host
// and port then come from the config or PG*).
function configFromParsed(p: ParsedConnectionString): ClientConfig {
  const c: ClientConfig = {};
  if (p.user !== null) c.user = p.user;
  if (p.password !== null) c.password = p.password;
  if (p.dbname !== null) c.database = p.dbname;
  const a = p.params['application_name'];
  if (a !== undefined) c.application_name = a;
  const o = p.params['options'];
  if (o !== undefined) c.options = o;
  const mode = p.params['sslmode'];
  if (mode === 'disable') c.ssl = false;
  else if (mode === 'require' || mode === 'verify-ca' || mode === 'verify-full' || mode === 'prefer') c.ssl = true;
  return c;
}

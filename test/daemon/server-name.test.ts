/**
 * The server's name as OpenSMTPD's getmailname() (util.c) finds it: /etc/mail/mailname, else
 * gethostname(), made canonical (getaddrinfo AI_CANONNAME, here through /etc/hosts) when it has
 * no domain part: reports then come from MAILER-DAEMON@host.example.org, not @host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findServerName } from '../../src/daemon/server-name.js';

test('getmailname(): mailname first, else the host name, a short one made canonical through the hosts file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsmtpd-name-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, '127.0.0.1 localhost\n# 10.0.0.1 box.wrong.test box\n127.0.1.1\tBox.Example.ORG box  # the machine\n::1 box.later.test box\n');
  const none = join(dir, 'no-mailname');
  assert.equal(findServerName({ mailnameFile: none, hostsFile, host: 'box' }), 'box.example.org');
  assert.equal(findServerName({ mailnameFile: none, hostsFile, host: 'other' }), 'other', 'not listed: kept as it is');
  assert.equal(findServerName({ mailnameFile: none, hostsFile, host: 'mx.dom.test' }), 'mx.dom.test', 'a name with a domain is not looked up');
  assert.equal(findServerName({ mailnameFile: none, hostsFile: join(dir, 'no-hosts'), host: 'box' }), 'box');
  const mailname = join(dir, 'mailname');
  writeFileSync(mailname, 'Mail.Example.NET\nignored\n');
  assert.equal(findServerName({ mailnameFile: mailname, hostsFile, host: 'box' }), 'mail.example.net');
  assert.equal(findServerName(mailname), 'mail.example.net');
});

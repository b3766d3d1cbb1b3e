/**
 * The libexec lookups, pure: a filter command without a leading `/` runs from OpenSMTPD's filter
 * directory (smtpd.c fork_filter_process() runs `exec PATH_LIBEXEC/command`), else through PATH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIBEXEC_DIRS, filterCommandLine, libexecDirs, tableHelper } from '../src/libexec.js';

const installed = new Set(['/usr/libexec/opensmtpd/filter-rspamd', '/usr/local/libexec/opensmtpd/filter-x', '/usr/libexec/opensmtpd/table-postgres']);
const exists = (p: string) => installed.has(p);

test('the first word is looked up in each directory in turn; its arguments follow', () => {
  assert.equal(filterCommandLine('filter-rspamd', DEFAULT_LIBEXEC_DIRS, exists), '/usr/libexec/opensmtpd/filter-rspamd');
  assert.equal(filterCommandLine('filter-rspamd -url http://127.0.0.1:11333', DEFAULT_LIBEXEC_DIRS, exists), '/usr/libexec/opensmtpd/filter-rspamd -url http://127.0.0.1:11333');
  assert.equal(filterCommandLine('  filter-x -v', DEFAULT_LIBEXEC_DIRS, exists), '/usr/local/libexec/opensmtpd/filter-x -v');
});

test('absolute commands, paths, shell words and programs not installed there are left to the shell', () => {
  for (const c of ['/usr/local/bin/filter-rspamd', 'node /srv/filter.js', './filter-rspamd', 'FOO=1 filter-rspamd', 'filter-rspamd;true']) {
    assert.equal(filterCommandLine(c, DEFAULT_LIBEXEC_DIRS, exists), c);
  }
});

test('table helpers are table-NAME; TSMTPD_LIBEXEC replaces the directory list', () => {
  assert.equal(tableHelper('postgres', DEFAULT_LIBEXEC_DIRS, exists), '/usr/libexec/opensmtpd/table-postgres');
  assert.equal(tableHelper('ldap', DEFAULT_LIBEXEC_DIRS, exists), undefined);
  assert.deepEqual(libexecDirs({ TSMTPD_LIBEXEC: '/a:relative:/b' }), ['/a', '/b']);
  assert.deepEqual(libexecDirs({}), DEFAULT_LIBEXEC_DIRS);
});

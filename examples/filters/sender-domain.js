// A tsmtpd filter module: refuse MAIL FROM a domain that does not exist in DNS.
//
//   filter "sender-domain" module "/etc/tsmtpd/filters/sender-domain.js" "log"
//   listen on 0.0.0.0 port 25 filter "sender-domain"
//
// The daemon performs the DNS lookups (cached, with a deadline); the handler awaits them and
// no session but this one waits. Types: `import type { FilterFactory } from 'tsmtpd/filter'`.

/** @type {import('tsmtpd/filter').FilterFactory} */
export default function create(options, services) {
  const verbose = options.includes('log');
  return {
    phases: {
      async 'mail-from'(ev) {
        const domain = ev.param.split('@')[1];
        // the null sender (bounces) and local senders are not checked
        if (!domain || ev.session.clientAddress === 'local') return { decision: 'proceed' };
        const [mx, a] = await Promise.all([services.dns.mx(domain), services.dns.a(domain)]);
        services.increment('checked', { mx: mx.status });
        if (mx.status === 'nxdomain' && a.status === 'nxdomain') {
          if (verbose) services.log(ev.session.id, { refused: domain });
          return { decision: 'reject', reply: `550 5.1.8 Sender domain ${domain} does not exist` };
        }
        // a DNS failure is not the sender's fault: let it try again later
        if (mx.status === 'tempfail' && a.status === 'tempfail') {
          return { decision: 'reject', reply: '451 4.4.3 Sender domain lookup failed, try again later' };
        }
        return { decision: 'proceed' };
      },
    },
  };
}

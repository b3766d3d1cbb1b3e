/**
 * A relay action's `mail-from` as mta.c applies it when it opens a task: the option is read as
 * text_to_mailaddr() reads an address, and each part it names replaces that part of the sender.
 * `@domain` keeps the local part, `user` keeps the domain, `user@domain` replaces both. The null
 * sender is never rewritten (`evp->sender.user[0]` is checked first), so bounces stay bounces.
 */
export function rewriteSender(sender: string, mailFrom: string | undefined): string {
  if (mailFrom === undefined) return sender;
  const at = sender.lastIndexOf('@');
  const user = at < 0 ? sender : sender.slice(0, at);
  if (user === '') return sender;
  const domain = at < 0 ? '' : sender.slice(at + 1);
  const mat = mailFrom.lastIndexOf('@');
  const newUser = mat < 0 ? mailFrom : mailFrom.slice(0, mat);
  const newDomain = mat < 0 ? '' : mailFrom.slice(mat + 1);
  return `${newUser || user}@${newDomain || domain}`;
}

// A certified OpenID provider (panva/oidc-provider) for the test suite, configured like ProConnect:
// authorization code + PKCE (S256, required), claim-named scopes (email, given_name, usual_name),
// acr values eidas1..eidas3, the userinfo answered as a signed JWT, RP-initiated logout.
//
// Started by tests/oidc_support.py with its configuration in the environment:
//   OIDC_PORT      the port to listen on, 127.0.0.1 only (0: any free port)
//   OIDC_CLIENTS   JSON array of client metadata (client_id, client_secret, redirect_uris, ...)
//   OIDC_ACCOUNTS  JSON array of {sub, email, password, given_name, usual_name, acr}
// It prints one JSON line {"issuer": ...} on stdout once it listens, and stops on SIGTERM.
//
// The login form is this script's own (French, minimal): an e-mail and a password checked against
// OIDC_ACCOUNTS; the consent of the registered (first-party) client is given without a page.
import http from 'node:http';
import Provider from 'oidc-provider';

const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '[]');
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
const port = Number(process.env.OIDC_PORT || 0);

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

function page(title, body) {
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;
}

function loginForm(uid, error, email = '') {
  return page('Fournisseur d\'identité de test', `
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label for="email">Adresse électronique</label>
  <input id="email" name="email" type="email" autocomplete="username" value="${escape(email)}" required>
  <label for="password">Mot de passe</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Valider</button>
</form>`);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { data += chunk; if (data.length > 10000) req.destroy(); });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(data))));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    acrValues: ['eidas1', 'eidas2', 'eidas3'],
    scopes: ['openid', 'email', 'given_name', 'usual_name'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      given_name: ['given_name'],
      usual_name: ['usual_name'],
      acr: null, amr: null, auth_time: null, sid: null,
    },
    cookies: { keys: ['usine-test-oidc-provider-cookie-key-0123456789'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      jwtUserinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Déconnexion du fournisseur d\'identité', `${form}
<p>Voulez-vous vous déconnecter du fournisseur d'identité ?</p>
<button type="submit" form="op.logoutForm" value="yes" name="logout">Me déconnecter</button>
<button type="submit" form="op.logoutForm">Rester connecté(e)</button>`);
        },
        postLogoutSuccessSource: async (ctx) => { ctx.body = page('Déconnecté(e)', '<p>Vous êtes déconnecté(e).</p>'); },
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, sub) => {
      const account = accounts.find((a) => a.sub === sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub, email: account.email, email_verified: true,
          given_name: account.given_name, usual_name: account.usual_name,
        }),
      };
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Erreur du fournisseur d\'identité', `<pre id="error">${escape(JSON.stringify(out))}</pre>`);
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const match = req.url.match(/^\/interaction\/([\w-]+)(\/login)?$/);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'POST' && match[2]) {
        const form = await readForm(req);
        const account = accounts.find((a) => a.email === form.email && a.password === form.password);
        if (!account) return send(res, 401, loginForm(details.uid, 'Adresse ou mot de passe incorrect.', form.email));
        return await provider.interactionFinished(req, res, {
          login: { accountId: account.sub, acr: account.acr || 'eidas1', amr: ['pwd'] },
        }, { mergeWithLastSubmission: false });
      }
      if (details.prompt.name === 'login') return send(res, 200, loginForm(details.uid));
      // consent: the test's client is first-party; everything it asks is granted.
      const grant = details.grantId ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      return await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (err) {
      return send(res, 400, page('Erreur du fournisseur d\'identité', `<pre id="error">${escape(err.message)}</pre>`));
    }
  });
  process.stdout.write(JSON.stringify({ issuer }) + '\n');
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

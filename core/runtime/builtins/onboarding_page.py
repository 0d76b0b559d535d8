"""The text of the onboarding page (`http://interpose.it/` through the proxy): how to point clients at the
proxy and install interpose's CA certificate, per platform. Pure text; `onboarding.py` serves it."""
from __future__ import annotations

import html

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; line-height: 1.5;
       color: #222; }
code, pre { background: #f3f3f3; padding: 0.1em 0.3em; border-radius: 3px; }
pre { padding: 0.6em; overflow-x: auto; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.download a { display: inline-block; margin: 0.3em 0.6em 0.3em 0; padding: 0.5em 1em; background: #2a6ebb;
              color: #fff; text-decoration: none; border-radius: 4px; }
.note { color: #555; }
"""


def page(host: str, proxy: str, ca_path: str, trusted_here: bool) -> str:
    """The page; `host` is the onboarding host, `proxy` the proxy's HOST:PORT, `ca_path` the CA file on the
    proxy's machine. `trusted_here`: this request came over TLS, so this client already trusts the CA."""
    e = html.escape
    h, p, ca = e(host), e(proxy), e(ca_path)
    state = ("<p><strong>This page came over HTTPS through interpose: this client already trusts its CA.</strong></p>"
             if trusted_here else
             "<p>You reached this page through interpose. To let it see HTTPS traffic, install its CA "
             "certificate on the client (below). Only install it on devices you control.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>interpose: install the CA certificate</title><style>{_STYLE}</style></head>
<body>
<h1>interpose</h1>
{state}
<p class="download"><a href="/cert/pem">Download the CA certificate (PEM)</a>
<a href="/cert/cer">Download the CA certificate (DER, .cer)</a></p>
<p class="note">The certificate is the same file as <code>{ca}</code> on the machine running the proxy.
The CA's private key never leaves that machine; this page does not serve it.</p>

<h2>Point the client at the proxy</h2>
<p>The proxy listens at <code>{p}</code>. Set it as the HTTP <em>and</em> HTTPS proxy of the client:</p>
<pre>curl -x http://{p} --cacert {ca} https://example.com
export http_proxy=http://{p} https_proxy=http://{p}</pre>
<p>Browsers: Firefox → Settings → Network Settings → Manual proxy configuration → HTTP proxy <code>{p}</code>,
tick "Also use this proxy for HTTPS". Chromium: <code>chromium --proxy-server=http://{p}</code>.
Then visit <code>http://{h}/</code> (this page) from the client.</p>

<h2>Linux (system store: curl, wget, most programs)</h2>
<p>Debian, Ubuntu:</p>
<pre>sudo cp interpose-ca-cert.pem /usr/local/share/ca-certificates/interpose.crt
sudo update-ca-certificates</pre>
<p>Fedora, RHEL, Arch:</p>
<pre>sudo trust anchor --store interpose-ca-cert.pem</pre>
<p>Chrome and Chromium read the NSS database:
<code>certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n interpose -i interpose-ca-cert.pem</code></p>

<h2>macOS</h2>
<pre>sudo security add-trusted-cert -d -p ssl -p basic -k /Library/Keychains/System.keychain interpose-ca-cert.pem</pre>
<p>Or double-click the downloaded file, open it in Keychain Access, and set "When using this certificate" to
"Always Trust".</p>

<h2>Windows</h2>
<pre>certutil -addstore root interpose-ca-cert.cer</pre>
<p>(in an administrator prompt), or double-click the <code>.cer</code> file → Install Certificate → Local Machine →
"Trusted Root Certification Authorities".</p>

<h2>Firefox (its own store, every platform)</h2>
<p>Settings → Privacy &amp; Security → Certificates → View Certificates → Authorities → Import, choose the PEM
file and tick "Trust this CA to identify websites". Or open <a href="/cert/pem">/cert/pem</a> in Firefox
through the proxy: it offers to import it.</p>

<h2>Android</h2>
<p>Download the <a href="/cert/cer">.cer</a> file, then Settings → Security → Encryption &amp; credentials →
Install a certificate → CA certificate. Since Android 7, apps trust user CAs only when their network security
configuration allows it (browsers such as Chrome do).</p>

<h2>iOS</h2>
<p>Open <a href="/cert/pem">/cert/pem</a> in Safari and allow the profile download, install it in Settings →
General → VPN &amp; Device Management, then turn on full trust in Settings → General → About → Certificate Trust
Settings.</p>

<h2>Python, curl and other tools</h2>
<pre>curl --cacert {ca} -x http://{p} https://example.com
export SSL_CERT_FILE={ca}           # Python's ssl, httpx
export REQUESTS_CA_BUNDLE={ca}      # requests
export NODE_EXTRA_CA_CERTS={ca}     # Node.js
export CURL_CA_BUNDLE={ca}</pre>
<p>In code: <code>httpx.Client(proxy="http://{p}", verify="{ca}")</code>,
<code>requests.get(url, proxies={{"https": "http://{p}"}}, verify="{ca}")</code>.</p>
</body></html>
"""


def not_found(host: str, path: str) -> str:
    e = html.escape
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>not found</title></head><body>"
            f"<p>interpose's onboarding page has nothing at <code>{e(path)}</code>. "
            f"See <a href=\"http://{e(host)}/\">http://{e(host)}/</a>.</p></body></html>\n")

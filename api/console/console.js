// The vecledger web console: one module, no build step, no dependencies.
//
// The page itself holds no data. Every call goes to this same origin as `POST /<Operation>` (or
// `POST /_vecledger/<action>`) signed here with AWS SigV4 (service "s3vectors") using WebCrypto, so
// the server checks the console's calls exactly like boto3's. The key pair stays in sessionStorage:
// it is gone when the tab closes and is never sent anywhere, only used to sign.
//
// All text from the server is put on the page with textContent (never innerHTML): keys and metadata
// are user data, and a script smuggled into them must not get at the secret key.

const STORE = "vecledger.console.credentials";
const SERVICE = "s3vectors";
const enc = new TextEncoder();

// ---------------------------------------------------------------- SigV4 in the browser

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmac(key, message) {
  const raw = typeof key === "string" ? enc.encode(key) : key;
  const k = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(message)));
}

// RFC 3986 encoding of one path segment, as SigV4 wants it.
const encodeSegment = (s) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

/** The headers that sign a POST of `body` (bytes) to `path` on `host`; the server rebuilds the same. */
export async function signV4(creds, path, body, host, now = new Date()) {
  const amzDate = now.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
  const day = amzDate.slice(0, 8);
  const payload = await sha256Hex(body);
  const signed = "host;x-amz-content-sha256;x-amz-date";
  const uri = "/" + path.split("/").filter((s) => s).map(encodeSegment).join("/");
  const canonical = [
    "POST",
    uri,
    "",
    `host:${host}\nx-amz-content-sha256:${payload}\nx-amz-date:${amzDate}\n`,
    signed,
    payload,
  ].join("\n");
  const scope = `${day}/${creds.region}/${SERVICE}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256Hex(enc.encode(canonical))].join("\n");
  let key = await hmac("AWS4" + creds.secretAccessKey, day);
  key = await hmac(key, creds.region);
  key = await hmac(key, SERVICE);
  key = await hmac(key, "aws4_request");
  const signature = hex(await hmac(key, toSign));
  return {
    "x-amz-date": amzDate,
    "x-amz-content-sha256": payload,
    authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
  };
}

// ---------------------------------------------------------------- calling the API

class ApiError extends Error {
  constructor(code, message, status, fields) {
    super(message);
    this.code = code;
    this.status = status;
    this.fields = fields || [];
  }
}

async function api(operation, body, creds = session()) {
  const path = "/" + operation;
  const bytes = enc.encode(JSON.stringify(body));
  const headers = await signV4(creds, path, bytes, location.host);
  let res;
  try {
    res = await fetch(path, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: bytes });
  } catch (e) {
    throw new ApiError("NetworkError", "the server could not be reached", 0);
  }
  const text = await res.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch (e) {
    data = { message: text };
  }
  if (!res.ok) {
    const code = res.headers.get("x-amzn-ErrorType") || `HTTP ${res.status}`;
    throw new ApiError(code.split(":")[0], data.message || res.statusText, res.status, data.fieldList);
  }
  return data;
}

/** An API error in words a person can act on; the wire code stays visible for searching the docs. */
function plainWords(err) {
  if (!(err instanceof ApiError)) return { text: String(err.message || err), code: "" };
  const m = err.message || "";
  // The field list often repeats the message word for word; show only what it adds.
  const fields = err.fields.filter((f) => !m.includes(f.message)).map((f) => `${f.path}: ${f.message}`).join("; ");
  let text;
  switch (err.code) {
    case "AccessDeniedException":
      if (/signature does not match/.test(m)) text = "Sign-in failed: the secret access key is not right for this access key ID.";
      else if (/access key id does not exist/.test(m)) text = "Sign-in failed: the server does not know this access key ID.";
      else if (/time is too large/.test(m)) text = "Your computer's clock is too far from the server's; correct it and try again.";
      else text = `You are not allowed to do this: ${m}.`;
      break;
    case "NotFoundException":
      text = `Not found: ${m}.`;
      break;
    case "ValidationException":
      text = `The server refused the input: ${m}${fields ? ` (${fields})` : ""}.`;
      break;
    case "ConflictException":
      text = `That conflicts with what exists: ${m}.`;
      break;
    case "ServiceQuotaExceededException":
      text = `A limit was reached: ${m}.`;
      break;
    case "TooManyRequestsException":
      text = `Too many requests right now (${m}); wait a moment and try again.`;
      break;
    case "NetworkError":
      text = "The server could not be reached; check that vecledger is running.";
      break;
    default:
      text = err.status >= 500 ? `The server failed to do this: ${m}.` : `The request failed: ${m}.`;
  }
  return { text, code: err.code };
}

// ---------------------------------------------------------------- session

function session() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE) || "null");
  } catch (e) {
    return null;
  }
}

// ---------------------------------------------------------------- DOM helpers

/** An element: `attrs` are properties (`onclick`, `value`, `className`...) or, with a dash, attributes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k.includes("-") || k === "for" || k === "role") el.setAttribute(k, v);
    else el[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

function field(label, input, hint) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  input.id = id;
  return h("div", { className: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { className: "muted empty" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows),
  );
}

function showError(err) {
  const { text, code } = plainWords(err);
  const box = $("error");
  box.replaceChildren(h("strong", {}, text), code ? h("span", { className: "code" }, code) : null);
  box.hidden = false;
  $("notice").hidden = true;
}

function notify(text) {
  $("error").hidden = true;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

function clearMessages() {
  $("error").hidden = true;
  $("notice").hidden = true;
}

/** Run an action from a button or form: disable it while it runs, show a failure in plain words. */
async function act(button, fn) {
  clearMessages();
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

function formatTime(t) {
  if (t === undefined || t === null) return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}

function short(value, max = 80) {
  const s = typeof value === "string" ? value : JSON.stringify(value);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

function formatVector(data) {
  const v = data && data.float32;
  if (!v) return "";
  const shown = v.slice(0, 8).map((x) => Number(x.toPrecision(4)));
  return `[${shown.join(", ")}${v.length > 8 ? ", …" : ""}]` + (v.length > 8 ? ` (${v.length})` : "");
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e.message}`);
  }
}

function parseVector(text, dimension) {
  const v = parseJson(text, "The vector");
  if (!Array.isArray(v) || !v.length || !v.every((x) => typeof x === "number" && isFinite(x)))
    throw new Error("The vector must be a JSON list of numbers, such as [0.1, 0.2, 0.3].");
  if (dimension && v.length !== dimension)
    throw new Error(`The vector has ${v.length} numbers but this index holds vectors of dimension ${dimension}.`);
  return v;
}

// ---------------------------------------------------------------- routing

// "#/bucket/<b>/index/<i>/<tab>?seq=N": the part after "?" is for the page, not the route.
const route = () => location.hash.replace(/^#\/?/, "").split("?")[0].split("/").map(decodeURIComponent);
const link = (...parts) => "#/" + parts.map(encodeURIComponent).join("/");

function crumbs(parts) {
  const nav = $("crumbs");
  nav.replaceChildren();
  parts.forEach(([label, href], i) => {
    if (i) nav.append(h("span", { className: "sep" }, "›"));
    nav.append(href ? h("a", { href }, label) : h("span", { className: "here" }, label));
  });
}

function header() {
  const creds = session();
  $("who").replaceChildren(
    ...(creds
      ? [
          h("span", { className: "muted" }, "Signed in as "),
          h("code", { id: "who-key" }, creds.accessKeyId),
          h("span", { className: "muted" }, ` · ${creds.region} `),
          h("button", { className: "link", id: "sign-out", onclick: signOut }, "Sign out"),
        ]
      : []),
  );
}

function signOut() {
  sessionStorage.removeItem(STORE);
  location.hash = "#/";
  render();
}

async function render() {
  header();
  const main = $("main");
  if (!session()) return loginPage(main);
  const [kind, bucket, sub, index, tab] = route();
  if (kind === "bucket" && bucket && sub === "index" && index) return indexPage(main, bucket, index, tab || "data");
  if (kind === "bucket" && bucket) return bucketPage(main, bucket);
  return bucketsPage(main);
}

window.addEventListener("hashchange", () => {
  clearMessages();
  render();
});

// ---------------------------------------------------------------- pages

function loginPage(main) {
  crumbs([["Sign in"]]);
  const keyId = h("input", { id: "login-key", autocomplete: "username", required: true, spellcheck: false });
  const secret = h("input", { id: "login-secret", type: "password", autocomplete: "current-password", required: true });
  const region = h("input", { id: "login-region", value: "us-east-1", required: true });
  const submit = h("button", { type: "submit", id: "login-submit" }, "Sign in");
  const form = h(
    "form",
    {
      className: "card narrow",
      id: "login-form",
      onsubmit: (ev) => {
        ev.preventDefault();
        const creds = { accessKeyId: keyId.value.trim(), secretAccessKey: secret.value, region: region.value.trim() };
        act(submit, async () => {
          await api("ListVectorBuckets", { maxResults: 1 }, creds); // proves the key pair before keeping it
          sessionStorage.setItem(STORE, JSON.stringify(creds));
          location.hash = "#/";
          render();
        });
      },
    },
    h("h1", {}, "Sign in"),
    h("p", { className: "muted" }, "Use an access key pair of this vecledger server. It is kept in this tab only and signs each request here; it is never sent."),
    field("Access key ID", keyId),
    field("Secret access key", secret),
    field("Region", region, "Part of the signature scope; any region works with vecledger."),
    h("div", { className: "actions" }, submit),
  );
  main.replaceChildren(form);
  keyId.focus();
}

async function listAll(operation, body, field) {
  const out = [];
  let token;
  do {
    const page = await api(operation, { ...body, ...(token ? { nextToken: token } : {}) });
    out.push(...(page[field] || []));
    token = page.nextToken;
  } while (token);
  return out;
}

// The Delete button of a bucket or index row: confirm, call, say so, reload the list.
function deleteCell(question, call, done, reload) {
  const onclick = (ev) => {
    if (!confirm(question)) return;
    act(ev.currentTarget, async () => {
      await call();
      notify(done);
      await reload();
    });
  };
  return h("td", { className: "row-actions" }, h("button", { className: "danger small-btn", onclick }, "Delete"));
}

async function bucketsPage(main) {
  crumbs([["Vector buckets"]]);
  const name = h("input", { id: "new-bucket", required: true, placeholder: "my-bucket", spellcheck: false });
  const create = h("button", { type: "submit", id: "create-bucket" }, "Create bucket");
  const list = h("div", { id: "bucket-list" }, h("p", { className: "muted" }, "Loading…"));
  main.replaceChildren(
    h(
      "section",
      { className: "card" },
      h("div", { className: "card-head" }, h("h1", {}, "Vector buckets")),
      list,
    ),
    h(
      "form",
      {
        className: "card inline-form",
        onsubmit: (ev) => {
          ev.preventDefault();
          act(create, async () => {
            await api("CreateVectorBucket", { vectorBucketName: name.value.trim() });
            notify(`Created vector bucket ${name.value.trim()}.`);
            name.value = "";
            await load();
          });
        },
      },
      h("h2", {}, "Create a vector bucket"),
      field("Bucket name", name, "3–63 lowercase letters, digits and hyphens."),
      h("div", { className: "actions" }, create),
    ),
  );
  async function load() {
    const buckets = await listAll("ListVectorBuckets", {}, "vectorBuckets");
    list.replaceChildren(
      table(
        ["Name", "ARN", "Created", ""],
        buckets.map((b) =>
          h(
            "tr",
            { "data-bucket": b.vectorBucketName },
            h("td", {}, h("a", { href: link("bucket", b.vectorBucketName) }, b.vectorBucketName)),
            h("td", { className: "mono small" }, b.vectorBucketArn || ""),
            h("td", { className: "nowrap" }, formatTime(b.creationTime)),
            deleteCell(
              `Delete vector bucket ${b.vectorBucketName}? It must hold no indexes.`,
              () => api("DeleteVectorBucket", { vectorBucketName: b.vectorBucketName }),
              `Deleted vector bucket ${b.vectorBucketName}.`,
              load,
            ),
          ),
        ),
        "No vector buckets yet: create one below.",
      ),
    );
  }
  await act(null, load);
}

async function bucketPage(main, bucket) {
  crumbs([["Vector buckets", "#/"], [bucket]]);
  const name = h("input", { id: "new-index", required: true, placeholder: "my-index", spellcheck: false });
  const dimension = h("input", { id: "new-dimension", type: "number", min: 1, max: 4096, value: 3, required: true });
  const metric = h(
    "select",
    { id: "new-metric" },
    h("option", { value: "cosine" }, "cosine"),
    h("option", { value: "euclidean" }, "euclidean"),
  );
  const nonFilterable = h("input", { id: "new-nonfilterable", placeholder: "text, source", spellcheck: false });
  const create = h("button", { type: "submit", id: "create-index" }, "Create index");
  const list = h("div", { id: "index-list" }, h("p", { className: "muted" }, "Loading…"));
  main.replaceChildren(
    h("section", { className: "card" }, h("div", { className: "card-head" }, h("h1", {}, `Indexes in ${bucket}`)), list),
    h(
      "form",
      {
        className: "card",
        onsubmit: (ev) => {
          ev.preventDefault();
          act(create, async () => {
            const keys = nonFilterable.value.split(",").map((s) => s.trim()).filter((s) => s);
            await api("CreateIndex", {
              vectorBucketName: bucket,
              indexName: name.value.trim(),
              dataType: "float32",
              dimension: Number(dimension.value),
              distanceMetric: metric.value,
              ...(keys.length ? { metadataConfiguration: { nonFilterableMetadataKeys: keys } } : {}),
            });
            notify(`Created index ${name.value.trim()}.`);
            name.value = "";
            await load();
          });
        },
      },
      h("h2", {}, "Create an index"),
      h(
        "div",
        { className: "grid" },
        field("Index name", name),
        field("Dimension", dimension, "1–4096; every vector must have this many numbers."),
        field("Distance metric", metric),
        field("Non-filterable metadata keys", nonFilterable, "Comma-separated; stored and returned, not usable in filters."),
      ),
      h("div", { className: "actions" }, h("span", { className: "muted" }, "Data type: float32"), create),
    ),
  );
  async function load() {
    const indexes = await listAll("ListIndexes", { vectorBucketName: bucket }, "indexes");
    list.replaceChildren(
      table(
        ["Name", "ARN", "Created", ""],
        indexes.map((i) =>
          h(
            "tr",
            { "data-index": i.indexName },
            h("td", {}, h("a", { href: link("bucket", bucket, "index", i.indexName, "data") }, i.indexName)),
            h("td", { className: "mono small" }, i.indexArn || ""),
            h("td", { className: "nowrap" }, formatTime(i.creationTime)),
            deleteCell(
              `Delete index ${i.indexName} and all its vectors?`,
              () => api("DeleteIndex", { vectorBucketName: bucket, indexName: i.indexName }),
              `Deleted index ${i.indexName}.`,
              load,
            ),
          ),
        ),
        "No indexes in this bucket yet: create one below.",
      ),
    );
  }
  await act(null, load);
}

const TABS = [
  ["data", "Data"],
  ["insert", "Insert vectors"],
  ["query", "Query"],
  ["audit", "Audit trail"],
  ["restore", "Restore"],
];

async function indexPage(main, bucket, index, tab) {
  crumbs([["Vector buckets", "#/"], [bucket, link("bucket", bucket)], [index]]);
  const summary = h("div", { className: "summary", id: "index-summary" }, h("span", { className: "muted" }, "Loading…"));
  const body = h("div", { id: "tab-body" });
  main.replaceChildren(
    h(
      "section",
      { className: "card" },
      h("div", { className: "card-head" }, h("h1", {}, index), summary),
      h(
        "div",
        { className: "tabs", role: "tablist" },
        TABS.map(([id, label]) =>
          h(
            "a",
            {
              href: link("bucket", bucket, "index", index, id),
              className: id === tab ? "tab active" : "tab",
              role: "tab",
              "aria-selected": id === tab ? "true" : "false",
              id: `tab-${id}`,
            },
            label,
          ),
        ),
      ),
      body,
    ),
  );
  const info = await act(null, () => api("GetIndex", { vectorBucketName: bucket, indexName: index }));
  if (!info) {
    summary.replaceChildren();
    return;
  }
  const ix = info.index;
  const nf = (ix.metadataConfiguration || {}).nonFilterableMetadataKeys || [];
  summary.replaceChildren(
    h("span", {}, h("b", {}, "Dimension "), String(ix.dimension)),
    h("span", {}, h("b", {}, "Metric "), ix.distanceMetric),
    h("span", {}, h("b", {}, "Data type "), ix.dataType),
    h("span", {}, h("b", {}, "Non-filterable "), nf.length ? nf.join(", ") : "none"),
  );
  const at = { vectorBucketName: bucket, indexName: index };
  const pages = { data: dataTab, insert: insertTab, query: queryTab, audit: auditTab, restore: restoreTab };
  await (pages[tab] || dataTab)(body, at, ix);
}

function dataTab(body, at) {
  const size = h(
    "select",
    { id: "page-size" },
    [10, 25, 50, 100, 500].map((n) => h("option", { value: n, selected: n === 25 }, `${n} per page`)),
  );
  const prev = h("button", { id: "page-prev", className: "secondary" }, "‹ Previous");
  const next = h("button", { id: "page-next", className: "secondary" }, "Next ›");
  const delSelected = h("button", { id: "delete-selected", className: "danger" }, "Delete selected");
  const pageLabel = h("span", { id: "page-label", className: "muted" });
  const list = h("div", { id: "vector-list" });
  // tokens[i] is the nextToken that fetches page i (page 0 needs none): Previous walks back along it.
  let tokens = [undefined];
  let page = 0;
  body.replaceChildren(
    h("div", { className: "toolbar" }, size, prev, pageLabel, next, h("span", { className: "grow" }), delSelected),
    list,
  );

  async function load() {
    prev.disabled = next.disabled = true; // no double clicks while a page loads; set again below
    const res = await api("ListVectors", {
      ...at,
      maxResults: Number(size.value),
      returnData: true,
      returnMetadata: true,
      ...(tokens[page] ? { nextToken: tokens[page] } : {}),
    });
    tokens = tokens.slice(0, page + 1);
    if (res.nextToken) tokens.push(res.nextToken);
    prev.disabled = page === 0;
    next.disabled = !res.nextToken;
    const vectors = res.vectors || [];
    pageLabel.textContent = `Page ${page + 1} · ${vectors.length} vector${vectors.length === 1 ? "" : "s"}`;
    list.replaceChildren(
      table(
        ["", "Key", "Vector", "Metadata", ""],
        vectors.map((v) =>
          h(
            "tr",
            { "data-key": v.key },
            h("td", { className: "pick-cell" }, h("input", { type: "checkbox", className: "pick", value: v.key, "aria-label": `select ${v.key}` })),
            h("td", { className: "mono key" }, v.key),
            h("td", { className: "mono small", title: JSON.stringify((v.data || {}).float32 || []) }, formatVector(v.data)),
            h("td", { className: "mono small" }, v.metadata && Object.keys(v.metadata).length ? short(v.metadata, 120) : ""),
            h(
              "td",
              { className: "row-actions" },
              h("button", { className: "danger small-btn", onclick: (ev) => remove([v.key], ev.currentTarget) }, "Delete"),
            ),
          ),
        ),
        page === 0 ? "This index holds no vectors yet: add some under Insert vectors." : "No more vectors.",
      ),
    );
  }

  async function remove(keys, button) {
    if (!keys.length) return showError(new Error("Select the vectors to delete first."));
    if (!confirm(`Delete ${keys.length === 1 ? `vector ${keys[0]}` : `${keys.length} vectors`}?`)) return;
    await act(button, async () => {
      await api("DeleteVectors", { ...at, keys });
      notify(`Deleted ${keys.length === 1 ? `vector ${keys[0]}` : `${keys.length} vectors`}.`);
      tokens = [undefined];
      page = 0;
      await load();
    });
  }

  size.addEventListener("change", () => {
    tokens = [undefined];
    page = 0;
    act(null, load);
  });
  prev.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    act(null, load);
  });
  next.addEventListener("click", () => {
    if (page + 1 < tokens.length) page += 1;
    act(null, load);
  });
  delSelected.addEventListener("click", () =>
    remove(
      Array.from(list.querySelectorAll("input.pick:checked"), (c) => c.value),
      delSelected,
    ),
  );
  return act(null, load);
}

function insertTab(body, at, ix) {
  const key = h("input", { id: "put-key", required: true, spellcheck: false, placeholder: "doc-001" });
  const example = JSON.stringify(Array.from({ length: Math.min(ix.dimension, 8) }, (_, i) => +(0.1 * (i + 1)).toFixed(1)));
  const vector = h("textarea", {
    id: "put-vector",
    rows: 3,
    required: true,
    spellcheck: false,
    placeholder: ix.dimension <= 8 ? example : `a JSON list of ${ix.dimension} numbers`,
  });
  const metadata = h("textarea", { id: "put-metadata", rows: 3, spellcheck: false, placeholder: '{"genre": "drama", "year": 2020}' });
  const submit = h("button", { type: "submit", id: "put-submit" }, "Insert vector");
  body.replaceChildren(
    h(
      "form",
      {
        className: "stack",
        onsubmit: (ev) => {
          ev.preventDefault();
          act(submit, async () => {
            const vec = { key: key.value.trim(), data: { float32: parseVector(vector.value, ix.dimension) } };
            if (metadata.value.trim()) {
              const meta = parseJson(metadata.value, "The metadata");
              if (meta === null || typeof meta !== "object" || Array.isArray(meta))
                throw new Error('The metadata must be a JSON object, such as {"genre": "drama"}.');
              vec.metadata = meta;
            }
            await api("PutVectors", { ...at, vectors: [vec] });
            notify(`Inserted vector ${vec.key}.`);
            key.value = "";
            vector.value = "";
            metadata.value = "";
            key.focus();
          });
        },
      },
      h("p", { className: "muted" }, "A vector with an existing key replaces it. Each insert is one PutVectors call, recorded in the audit trail."),
      field("Key", key),
      field("Vector (JSON list)", vector, `${ix.dimension} numbers.`),
      field("Metadata (JSON object, optional)", metadata),
      h("div", { className: "actions" }, submit),
    ),
  );
}

function queryTab(body, at, ix) {
  const vector = h("textarea", { id: "query-vector", rows: 3, required: true, spellcheck: false, placeholder: `a JSON list of ${ix.dimension} numbers` });
  const topK = h("input", { id: "query-topk", type: "number", min: 1, max: 10000, value: 10, required: true });
  const filter = h("textarea", { id: "query-filter", rows: 2, spellcheck: false, placeholder: '{"genre": {"$eq": "drama"}}' });
  const withDistance = h("input", { id: "query-distance", type: "checkbox", checked: true });
  const withMetadata = h("input", { id: "query-metadata", type: "checkbox", checked: true });
  const submit = h("button", { type: "submit", id: "query-submit" }, "Query");
  const results = h("div", { id: "query-results" });
  body.replaceChildren(
    h(
      "form",
      {
        className: "stack",
        onsubmit: (ev) => {
          ev.preventDefault();
          act(submit, async () => {
            const req = {
              ...at,
              topK: Number(topK.value),
              queryVector: { float32: parseVector(vector.value, ix.dimension) },
              returnDistance: withDistance.checked,
              returnMetadata: withMetadata.checked,
            };
            if (filter.value.trim()) req.filter = parseJson(filter.value, "The filter");
            const res = await api("QueryVectors", req);
            const found = res.vectors || [];
            const cols = ["#", "Key"];
            if (withDistance.checked) cols.push(`Distance (${res.distanceMetric || ix.distanceMetric})`);
            if (withMetadata.checked) cols.push("Metadata");
            results.replaceChildren(
              h("h2", {}, `${found.length} nearest`),
              table(
                cols,
                found.map((v, i) =>
                  h(
                    "tr",
                    { "data-key": v.key },
                    h("td", { className: "muted rank" }, String(i + 1)),
                    h("td", { className: "mono key" }, v.key),
                    withDistance.checked ? h("td", { className: "mono distance" }, v.distance === undefined ? "" : Number(v.distance).toPrecision(6)) : null,
                    withMetadata.checked ? h("td", { className: "mono small" }, v.metadata && Object.keys(v.metadata).length ? short(v.metadata, 120) : "") : null,
                  ),
                ),
                "Nothing matched.",
              ),
            );
          });
        },
      },
      field("Query vector (JSON list)", vector, `${ix.dimension} numbers.`),
      h(
        "div",
        { className: "grid" },
        field("Top K", topK),
        field("Filter (JSON, optional)", filter, "On filterable metadata: $eq, $ne, $gt, $in, $and, $or…"),
      ),
      h(
        "div",
        { className: "checks" },
        h("label", {}, withDistance, " Return distance"),
        h("label", {}, withMetadata, " Return metadata"),
      ),
      h("div", { className: "actions" }, submit),
    ),
    results,
  );
}

function auditTab(body, at) {
  const key = h("input", { id: "audit-key", spellcheck: false, placeholder: "any key" });
  const principal = h("input", { id: "audit-principal", spellcheck: false, placeholder: "anyone" });
  const since = h("input", { id: "audit-since", spellcheck: false, placeholder: "2026-01-01T00:00:00Z" });
  const submit = h("button", { type: "submit", id: "audit-submit" }, "Show");
  const list = h("div", { id: "audit-list" });
  async function load() {
    const req = { ...at, verbose: true };
    if (key.value.trim()) req.key = key.value.trim();
    if (principal.value.trim()) req.principal = principal.value.trim();
    if (since.value.trim()) req.since = since.value.trim();
    const res = await api("_vecledger/audit", req);
    const records = res.records || [];
    list.replaceChildren(
      h("p", { className: "muted" }, `${records.length} record${records.length === 1 ? "" : "s"}, oldest first. "Seq" is the position in the index's log: restore to it.`),
      table(
        ["Time", "Seq", "Operation", "Outcome", "Principal", "Keys", "Source", "Request", ""],
        records.map((r) => {
          const inIndexLog = r.log !== "catalog" && r.log !== "audit";
          const keys = r.keys ? short(r.keys.join(", "), 60) : r.count !== undefined ? `${r.count} vector${r.count === 1 ? "" : "s"}` : "";
          return h(
            "tr",
            { "data-op": r.operation, "data-seq": inIndexLog ? String(r.seq) : "" },
            h("td", { className: "nowrap small" }, formatTime(r.time)),
            h("td", { className: "mono" }, inIndexLog ? String(r.seq) : ""),
            h("td", {}, r.operation),
            h("td", {}, h("span", { className: `badge ${r.outcome}` }, r.outcome)),
            h("td", { className: "mono small" }, r.principal),
            h("td", { className: "mono small keys" }, keys),
            h("td", { className: "mono small" }, `${r.source || ""}${r.dialect ? ` (${r.dialect})` : ""}`),
            h("td", { className: "mono small" }, r.request_id || ""),
            h(
              "td",
              { className: "row-actions" },
              inIndexLog
                ? h(
                    "a",
                    {
                      className: "small-link",
                      href: link("bucket", at.vectorBucketName, "index", at.indexName, "restore") + `?seq=${r.seq}`,
                      title: "Restore the index as it was right after this change",
                    },
                    "Restore to here",
                  )
                : null,
            ),
          );
        }),
        "No audit records match.",
      ),
    );
  }
  body.replaceChildren(
    h(
      "form",
      {
        className: "filters",
        onsubmit: (ev) => {
          ev.preventDefault();
          act(submit, load);
        },
      },
      field("Key", key),
      field("Principal", principal),
      field("Since (ISO time)", since),
      h("div", { className: "actions" }, submit),
    ),
    list,
  );
  return act(null, load);
}

function restoreTab(body, at) {
  const preset = new URLSearchParams(location.hash.split("?")[1] || "").get("seq");
  const bySeq = h("input", { type: "radio", name: "restore-by", id: "restore-by-seq", value: "seq", checked: true });
  const byTime = h("input", { type: "radio", name: "restore-by", id: "restore-by-time", value: "time" });
  const seq = h("input", { id: "restore-seq", type: "number", min: 0, value: preset ?? "" });
  const time = h("input", { id: "restore-time", spellcheck: false, placeholder: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"), disabled: true });
  const into = h("input", { id: "restore-into", required: true, spellcheck: false, value: preset !== null ? `${at.indexName}-at-${preset}` : "" });
  const submit = h("button", { type: "submit", id: "restore-submit" }, "Restore into a new index");
  const result = h("div", { id: "restore-result" });
  const sync = () => {
    seq.disabled = !bySeq.checked;
    time.disabled = !byTime.checked;
  };
  bySeq.addEventListener("change", sync);
  byTime.addEventListener("change", sync);
  body.replaceChildren(
    h(
      "form",
      {
        className: "stack",
        onsubmit: (ev) => {
          ev.preventDefault();
          act(submit, async () => {
            const req = { ...at, intoIndexName: into.value.trim() };
            if (bySeq.checked) {
              if (seq.value === "") throw new Error("Give the sequence number to restore to (see the audit trail).");
              req.toSeq = Number(seq.value);
            } else {
              if (!time.value.trim()) throw new Error("Give the time to restore to, such as 2026-01-01T12:00:00Z.");
              req.toTime = time.value.trim();
            }
            const res = await api("_vecledger/restore", req);
            notify(`Restored ${at.indexName} as of seq ${res.restoredFromSeq} into ${req.intoIndexName}.`);
            result.replaceChildren(
              h(
                "p",
                {},
                "The new index ",
                h("code", {}, res.indexArn),
                " holds the data as it was. ",
                h("a", { id: "open-restored", href: link("bucket", at.vectorBucketName, "index", req.intoIndexName, "data") }, `Open ${req.intoIndexName}`),
              ),
            );
          });
        },
      },
      h(
        "p",
        { className: "muted" },
        "Rebuilds this index as it was at a point of its history into a new index; this index is not changed. Find sequence numbers in the audit trail.",
      ),
      h(
        "div",
        { className: "checks" },
        h("label", {}, bySeq, " To a sequence number"),
        h("label", {}, byTime, " To a time"),
      ),
      h(
        "div",
        { className: "grid" },
        field("Sequence number", seq, "Inclusive: the state right after this change."),
        field("Time (ISO 8601 with zone)", time, "The state as of this moment."),
        field("New index name", into),
      ),
      h("div", { className: "actions" }, submit),
    ),
    result,
  );
}

render();

"""Independent numpy references for the model's layers, written from the PyTorch definitions
(X-Restormer's `xrestormer_arch.py`; the GenLV authors' `xrestormer_prompt_crossattn_wores.py`:
`Single_Base_Encoder_x3`, `SpatCrossAttn`, `SpatCrossAttnBlock`; BasicSR's `ResidualBlockNoBN`;
torch docs) with explicit loops rather than our shortcuts. float64 throughout.

Weights are taken in the layout of the arrays they are applied to here: a 1x1 conv or
`nn.Linear` as an (in, out) matrix (torch's weight transposed), a 3x3 conv HWIO, a depthwise
conv as (3, 3, 1, C)."""

import numpy as np


def softmax(x, axis=-1):
  x = x - x.max(axis=axis, keepdims=True)
  e = np.exp(x)
  return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x, weight, bias, eps=1e-5):
  mu = x.mean(-1, keepdims=True)
  var = x.var(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * weight + bias


def conv2d_same(x, kernel, groups=1):
  """Zero-padded 'same' conv by a direct loop over kernel taps; x (H, W, Cin), kernel HWIO."""
  kh, kw, cin_g, cout = kernel.shape
  h, w, cin = x.shape
  ph, pw = kh // 2, kw // 2
  xp = np.pad(x, ((ph, ph), (pw, pw), (0, 0)))
  out = np.zeros((h, w, cout), np.float64)
  cout_g = cout // groups
  for g in range(groups):
    xs = xp[:, :, g * cin_g:(g + 1) * cin_g]
    for i in range(kh):
      for j in range(kw):
        patch = xs[i:i + h, j:j + w, :]
        out[:, :, g * cout_g:(g + 1) * cout_g] += patch @ kernel[i, j, :, g * cout_g:(g + 1) * cout_g]
  return out


def pixel_shuffle(x, r):
  """torch.nn.PixelShuffle on one (H, W, C*r*r) image, element by element from the docs:
  out[h*r+i, w*r+j, c] = in[h, w, c*r*r + i*r + j]."""
  h, w, crr = x.shape
  c = crr // (r * r)
  out = np.zeros((h * r, w * r, c), x.dtype)
  for ci in range(c):
    for i in range(r):
      for j in range(r):
        out[i::r, j::r, ci] = x[:, :, ci * r * r + i * r + j]
  return out


def rel_to_abs(x):
  """X-Restormer's `rel_to_abs`, step by step: pad a column, flatten, pad, reshape, slice."""
  b, l, m = x.shape
  r = (m + 1) // 2
  x = np.concatenate([x, np.zeros((b, l, 1), x.dtype)], axis=2)
  flat = x.reshape(b, l * (m + 1))
  flat = np.concatenate([flat, np.zeros((b, m - l), x.dtype)], axis=1)
  return flat.reshape(b, l + 1, m)[:, :l, -r:]


def relative_logits(q, rel_height, rel_width):
  """Relative position logits of one window's queries q (ws, ws, d) -> (ws*ws, ows*ows),
  following X-Restormer's `RelPosEmb.forward` (`relative_logits_1d` for width, then height)."""
  ws = q.shape[0]
  ows = (rel_width.shape[0] + 1) // 2
  # width: logits over rows x, queries y, table entries; rel_to_abs per row.
  lw = np.einsum("xyd,rd->xyr", q, rel_width)
  lw = rel_to_abs(lw)                                    # (x, y, key col j)
  lw = np.broadcast_to(lw[:, :, None, :], (ws, ws, ows, ows))      # (x, y, key row i, j)
  qt = q.transpose(1, 0, 2)                                          # (y, x, d)
  lh = rel_to_abs(np.einsum("yxd,rd->yxr", qt, rel_height))        # (y, x, key row i)
  lh = np.broadcast_to(lh.transpose(1, 0, 2)[:, :, :, None], (ws, ws, ows, ows))
  return (lw + lh).reshape(ws * ws, ows * ows)


def overlapping_window_attention(x, wqkv, wout, rel_height, rel_width, heads, dim_head,
                                 window_size, overlap_size):
  """OCA on one image (H, W, C) by a loop over windows and heads."""
  h, w, _ = x.shape
  ws, ows, pad = window_size, window_size + overlap_size, overlap_size // 2
  inner = heads * dim_head
  qkv = x @ wqkv
  q, k, v = qkv[..., :inner], qkv[..., inner:2 * inner], qkv[..., 2 * inner:]
  kp = np.pad(k, ((pad, pad + ows), (pad, pad + ows), (0, 0)))
  vp = np.pad(v, ((pad, pad + ows), (pad, pad + ows), (0, 0)))
  out = np.zeros((h, w, inner))
  for wy in range(h // ws):
    for wx in range(w // ws):
      qwin = q[wy * ws:(wy + 1) * ws, wx * ws:(wx + 1) * ws]
      kwin = kp[wy * ws:wy * ws + ows, wx * ws:wx * ws + ows].reshape(ows * ows, inner)
      vwin = vp[wy * ws:wy * ws + ows, wx * ws:wx * ws + ows].reshape(ows * ows, inner)
      for head in range(heads):
        sl = slice(head * dim_head, (head + 1) * dim_head)
        qh = qwin[:, :, sl] * dim_head ** -0.5
        logits = qh.reshape(ws * ws, dim_head) @ kwin[:, sl].T
        logits = logits + relative_logits(qh, rel_height, rel_width)
        o = softmax(logits) @ vwin[:, sl]
        out[wy * ws:(wy + 1) * ws, wx * ws:(wx + 1) * ws, sl] = o.reshape(ws, ws, dim_head)
  return out @ wout


def gelu(x):
  """torch's `nn.GELU()` / `F.gelu` default: the exact form x * Phi(x)."""
  from scipy.special import erf
  return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def linear(x, weight, bias=None):
  """`nn.Linear` / a 1x1 `nn.Conv2d` on channels-last x with an (in, out) weight."""
  y = x @ weight
  return y if bias is None else y + bias


def pixel_unshuffle(x, r):
  """torch.nn.PixelUnshuffle on one (H, W, C) image, element by element from the docs:
  out[h, w, c*r*r + i*r + j] = in[h*r+i, w*r+j, c]."""
  h, w, c = x.shape
  out = np.zeros((h // r, w // r, c * r * r), x.dtype)
  for ci in range(c):
    for i in range(r):
      for j in range(r):
        out[:, :, ci * r * r + i * r + j] = x[i::r, j::r, ci]
  return out


def feed_forward(x, p):
  """The authors' `FeedForward` (GDFN) on one (H, W, C) image; p: project_in, dwconv,
  project_out, each {"kernel", optional "bias"}. hidden = project_out's input width."""
  bias = lambda q: q.get("bias")  # noqa: E731
  y = linear(x, p["project_in"]["kernel"], bias(p["project_in"]))
  y = conv2d_same(y, p["dwconv"]["kernel"], groups=y.shape[-1])
  if bias(p["dwconv"]) is not None:
    y = y + p["dwconv"]["bias"]
  hidden = y.shape[-1] // 2
  x1, x2 = y[..., :hidden], y[..., hidden:]                 # torch's .chunk(2, dim=1)
  return linear(gelu(x1) * x2, p["project_out"]["kernel"], bias(p["project_out"]))


def residual_block_no_bn(x, p):
  """BasicSR's `ResidualBlockNoBN` (res_scale 1): x + conv2(relu(conv1(x))), 3x3 convs with bias."""
  y = conv2d_same(x, p["conv1"]["kernel"]) + p["conv1"]["bias"]
  y = conv2d_same(np.maximum(y, 0.0), p["conv2"]["kernel"]) + p["conv2"]["bias"]
  return x + y


def prompt_encoder(image, p, blocks_per_level=4):
  """The authors' `Single_Base_Encoder_x3.forward` on one (H, W, 3) prompt -> (H/8 * W/8, dim)
  tokens, row-major ('b c h w -> b (h w) c'). p holds their modules by name: conv_first,
  conv_hr, norm, fea_level{1,2,3} (a list of residual blocks), channel_reduction{1,2,3},
  norm{1,2,3}, conv_lr, conv_last, norm_out."""
  ln = lambda x, q: layer_norm(x, q["weight"], q["bias"])  # noqa: E731  (nn.LayerNorm)
  conv = lambda x, q: conv2d_same(x, q["kernel"]) + q["bias"]  # noqa: E731
  fea = conv(gelu(conv(image, p["conv_first"])), p["conv_hr"])
  fea = ln(fea, p["norm"])
  for level in (1, 2, 3):
    blocks = p[f"fea_level{level}"]
    assert len(blocks) == blocks_per_level
    for block in blocks:
      fea = residual_block_no_bn(fea, block)
    fea = gelu(fea)
    reduction = p[f"channel_reduction{level}"]
    fea = gelu(linear(pixel_unshuffle(fea, 2), reduction["kernel"], reduction["bias"]))
    fea = ln(fea, p[f"norm{level}"])
  out = linear(gelu(conv(fea, p["conv_lr"])), p["conv_last"]["kernel"], p["conv_last"]["bias"])
  out = ln(out, p["norm_out"])
  return out.reshape(-1, out.shape[-1])


def spat_cross_attn(x, p, heads, prompt_k=None, prompt_v=None):
  """The authors' `SpatCrossAttn.forward` on one sequence of tokens x (N, C): q from x; k, v
  from x, or from prompt_k / prompt_v (M, C) when both are given. Scale (C / heads) ** -0.5,
  softmax over keys, head by head and query by query; to_out has a bias, the others none."""
  n, c = x.shape
  d = c // heads
  q = linear(x, p["to_q"]["kernel"])
  if prompt_k is None or prompt_v is None:
    k, v = linear(x, p["to_k"]["kernel"]), linear(x, p["to_v"]["kernel"])
  else:
    k, v = linear(prompt_k, p["to_k"]["kernel"]), linear(prompt_v, p["to_v"]["kernel"])
  out = np.zeros((n, c))
  for head in range(heads):                              # 'b n (h d) -> (b h) n d'
    sl = slice(head * d, (head + 1) * d)
    for i in range(n):
      sim = np.array([np.dot(q[i, sl], k[j, sl]) for j in range(k.shape[0])]) * d ** -0.5
      attn = np.exp(sim - sim.max())
      attn /= attn.sum()
      out[i, sl] = attn @ v[:, sl]
  return linear(out, p["to_out"]["kernel"], p["to_out"]["bias"])


def spat_cross_attn_block(x, prompt_lq, prompt_gt, p, heads):
  """The authors' `SpatCrossAttnBlock.forward` on one (H, W, C) latent, with the encoded prompt
  source and target as (M, C) tokens. Norms 1-2 are Restormer's WithBias LayerNorm, 3-5
  `nn.LayerNorm` (the same function); norm5 is a post-norm on the stream, and spatial_ffn has
  no norm before it."""
  h, w, c = x.shape
  ln = lambda t, name: layer_norm(t, p[name]["weight"], p[name]["bias"])  # noqa: E731
  mdta = p["channel_attn"]
  mdta_bias = lambda name: mdta[name].get("bias")  # noqa: E731
  x = x + channel_attention_with_bias(
      ln(x, "norm1"), mdta["qkv"]["kernel"], mdta_bias("qkv"), mdta["qkv_dwconv"]["kernel"],
      mdta_bias("qkv_dwconv"), mdta["project_out"]["kernel"], mdta_bias("project_out"),
      mdta["temperature"], heads)
  x = x + feed_forward(ln(x, "norm2"), p["channel_ffn"])
  t = x.reshape(h * w, c)                                # 'b c h w -> b (h w) c'
  t = t + spat_cross_attn(ln(t, "norm3"), p["spatial_attn"], heads)
  t = t + spat_cross_attn(ln(t, "norm4"), p["cross_attn"], heads, prompt_lq, prompt_gt)
  t = ln(t, "norm5")
  x = t.reshape(h, w, c)                                 # 'b (h w) c -> b c h w'
  return x + feed_forward(x, p["spatial_ffn"])


def channel_attention_with_bias(x, wqkv, bqkv, dw_kernel, bdw, wout, bout, temperature, heads):
  """MDTA (the authors' `MDTA`, `bias` True or False) on one (H, W, C) image."""
  h, w, c = x.shape
  qkv = linear(x, wqkv, bqkv)
  qkv = conv2d_same(qkv, dw_kernel, groups=3 * c)
  if bdw is not None:
    qkv = qkv + bdw
  qkv = qkv.reshape(h * w, 3 * c)
  q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
  ch = c // heads
  out = np.zeros((h * w, c))
  for head in range(heads):
    sl = slice(head * ch, (head + 1) * ch)
    qh, kh, vh = q[:, sl].T, k[:, sl].T, v[:, sl].T          # (ch, N)
    qh = qh / np.maximum(np.linalg.norm(qh, axis=1, keepdims=True), 1e-12)
    kh = kh / np.maximum(np.linalg.norm(kh, axis=1, keepdims=True), 1e-12)
    out[:, sl] = (softmax(qh @ kh.T * temperature[head]) @ vh).T
  return linear(out, wout, bout).reshape(h, w, c)


def attention(q, k, v, scale, bias=None):
  """softmax(scale * q k^T + bias) v for (T, heads, D) q and (S, heads, D) k, v, head by head."""
  out = np.zeros(q.shape[:2] + (v.shape[-1],))
  for head in range(q.shape[1]):
    logits = scale * q[:, head] @ k[:, head].T
    if bias is not None:
      logits = logits + bias[head]
    out[:, head] = softmax(logits) @ v[:, head]
  return out

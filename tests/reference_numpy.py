"""Independent numpy references for the model's layers, written from the PyTorch definitions
(X-Restormer's `xrestormer_arch.py`, torch docs) with explicit loops rather than our shortcuts."""

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


def channel_attention(x, wqkv, dw_kernel, wout, temperature, heads):
  """MDTA on one image (H, W, C): per head a (C/h x C/h) softmax over L2-normalised q, k."""
  h, w, c = x.shape
  qkv = conv2d_same(x @ wqkv, dw_kernel, groups=3 * c).reshape(h * w, 3 * c)
  q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
  ch = c // heads
  out = np.zeros((h * w, c))
  for head in range(heads):
    sl = slice(head * ch, (head + 1) * ch)
    qh, kh, vh = q[:, sl].T, k[:, sl].T, v[:, sl].T          # (ch, N)
    qh = qh / np.maximum(np.linalg.norm(qh, axis=1, keepdims=True), 1e-12)
    kh = kh / np.maximum(np.linalg.norm(kh, axis=1, keepdims=True), 1e-12)
    attn = softmax(qh @ kh.T * temperature[head])
    out[:, sl] = (attn @ vh).T
  return (out @ wout).reshape(h, w, c)


def prompt_cross_attention(x, z_source, z_target, wq, wk, wv, wout, heads):
  """PCA on one image: queries from x (H, W, C), keys from z_S, values from z_T (Hp, Wp, C)."""
  h, w, c = x.shape
  dh = c // heads
  q = x.reshape(-1, c) @ wq
  k = z_source.reshape(-1, c) @ wk
  v = z_target.reshape(-1, c) @ wv
  out = np.zeros_like(q)
  for head in range(heads):
    sl = slice(head * dh, (head + 1) * dh)
    out[:, sl] = softmax(q[:, sl] @ k[:, sl].T / np.sqrt(dh)) @ v[:, sl]
  return (out @ wout).reshape(h, w, c)

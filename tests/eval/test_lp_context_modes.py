"""Each context mode against a small re-implementation of its reference code's loop.

The reference loops below follow, line by line where it matters, facebookresearch/dino
``eval_video_segmentation.py`` (queue), xvjiarui/VFS ``VanillaTracker.forward_test`` +
``masked_attention_efficient`` (vfs) and ajabri/videowalk / alexandre-eymael/CropMAE ``test.py`` +
``context_index_bank`` + ``mem_efficient_batched_affinity`` (crw), on constructed features.
"""

import queue

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from correlearn.eval.features import frame_to_tensor
from correlearn.eval.label_propagation import (
    LabelPropConfig,
    context_indices,
    labels_to_mask,
    mask_to_labels,
    propagate_sequence,
    propagate_soft_labels,
)

H, W, C, M, N_FRAMES = 16, 20, 12, 3, 8


def feature_fn(x):
    """Stride 2 (average pool) then a fixed random 1x1 projection: ``(B, C, H/2, W/2)``."""
    g = torch.Generator().manual_seed(1)
    proj = torch.randn(C, 3, generator=g)
    return torch.einsum("dc,bchw->bdhw", proj, F.avg_pool2d(x, 2)) + 0.3


def video():
    """A texture drifting right by one pixel per frame, plus noise, and a 2-object mask."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (H, W + N_FRAMES, 3))
    frames = []
    for t in range(N_FRAMES):
        f = base[:, N_FRAMES - t : N_FRAMES - t + W] + rng.normal(0, 20, (H, W, 3))
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    mask = np.zeros((H, W), dtype=np.int64)
    mask[3:11, 4:10] = 1
    mask[9:15, 12:19] = 2
    return frames, mask


def per_frame_features(frames):
    return [F.normalize(feature_fn(frame_to_tensor(f))[0], dim=0) for f in frames]


def cfg_for(mode, **kw):
    return LabelPropConfig(
        short_side=None, context=mode, context_frames=M, feature_batch=1, tile=3, **kw
    )


def ours(mode, frames, mask, **kw):
    """(soft labels of frames 1.., masks of frames 0..) from our implementation."""
    cfg = cfg_for(mode, **kw)
    feats = per_frame_features(frames)
    ids = np.array([0, 1, 2])
    first = mask_to_labels(mask, ids, feats[0].shape[-2:], "cpu", cfg.first_labels)
    soft = list(propagate_soft_labels(iter(feats), first, cfg))
    return soft, propagate_sequence(feature_fn, frames, mask, cfg)


def pil_nearest_onehot(mask, h, w):
    """VFS ``pil_nearest_interpolate`` / DINO ``read_seg``: PIL nearest resize, then one-hot."""
    small = np.array(Image.fromarray(mask.astype(np.uint8)).resize((w, h), Image.NEAREST))
    return F.one_hot(torch.from_numpy(small).long(), 3).permute(2, 0, 1)[None].float()


def dino_reference(feats, mask, n_last_frames, size_mask_neighborhood, topk, temp=0.1):
    """DINO eval_video_tracking_davis + label_propagation (square window, exp(cos/0.1))."""
    h, w = feats[0].shape[-2:]
    first_seg = pil_nearest_onehot(mask, h, w)
    nb = torch.zeros(h, w, h, w)
    s = size_mask_neighborhood
    for i in range(h):
        for j in range(w):
            nb[i, j, max(0, i - s) : i + s + 1, max(0, j - s) : j + s + 1] = 1
    nb = nb.reshape(h * w, h * w)
    que = queue.Queue(n_last_frames)
    frame1_feat = feats[0].reshape(C, -1)  # dim x h*w
    softs, masks = [], []
    for cnt in range(1, len(feats)):
        used_feats = [frame1_feat] + [p[0] for p in list(que.queue)]
        used_segs = [first_seg] + [p[1] for p in list(que.queue)]
        feat_tar = F.normalize(feats[cnt].reshape(C, -1).T, dim=1, p=2)
        src = F.normalize(torch.stack(used_feats), dim=1, p=2)
        n = len(used_feats)
        aff = torch.exp(torch.bmm(feat_tar.unsqueeze(0).repeat(n, 1, 1), src) / temp)
        aff *= nb.unsqueeze(0).repeat(n, 1, 1)
        aff = aff.transpose(2, 1).reshape(-1, h * w)
        tk_val, _ = torch.topk(aff, dim=0, k=topk)
        tk_val_min, _ = torch.min(tk_val, dim=0)
        aff[aff < tk_val_min] = 0
        aff = aff / torch.sum(aff, keepdim=True, axis=0)
        segs = torch.cat(used_segs)
        segs = segs.reshape(n, 3, -1).transpose(2, 1).reshape(-1, 3).T
        seg_tar = torch.mm(segs, aff).reshape(1, 3, h, w)
        if que.qsize() == n_last_frames:
            que.get()
        que.put([feats[cnt].reshape(C, -1), seg_tar.clone()])
        softs.append(seg_tar[0])
        up = F.interpolate(seg_tar, scale_factor=2, mode="bilinear", align_corners=False)[0]
        for c in range(3):  # norm_mask
            if up[c].max() > 0:
                up[c] = up[c] - up[c].min()
                up[c] = up[c] / up[c].max()
        masks.append(up.argmax(0).numpy())
    return softs, masks


def vfs_attention(query, key, value, mask, temperature, topk, step=32):
    """VFS ``masked_attention_efficient`` (softmax mode, normalize, non_mask_len 0)."""
    clip_len = key.size(2)
    query, key = F.normalize(query, p=2, dim=1), F.normalize(key, p=2, dim=1)
    q_vec = query.view(1, C, -1)
    k_vec = key.view(1, C, -1)
    v_vec = value.view(1, value.size(1), -1)
    hw = q_vec.shape[-1]
    output = torch.zeros(1, value.size(1), hw)
    for ptr in range(0, hw, step):
        aff = torch.einsum("bci,bcj->bij", k_vec, q_vec[..., ptr : ptr + step]) / temperature
        cur = mask.view(1, 1, hw, hw)[..., ptr : ptr + step].expand(1, clip_len, -1, -1)
        aff.masked_fill_(~cur.reshape(1, -1, aff.size(2)).bool(), float("-inf"))
        top_aff, top_idx = aff.topk(k=topk, dim=1)
        top_val = v_vec.transpose(0, 1).reshape(value.size(1), -1)
        top_val = top_val.index_select(dim=1, index=top_idx.reshape(-1))
        top_val = top_val.reshape(value.size(1), *top_idx.shape).transpose(0, 1)
        output[..., ptr : ptr + step] = torch.einsum(
            "bcks,bks->bcs", top_val, top_aff.softmax(dim=1)
        )
    return output.reshape(1, value.size(1), *query.shape[2:])


def vfs_reference(feats, mask, precede_frames, neighbor_range, topk, temperature):
    """VFS VanillaTracker.forward_test (with_first, with_first_neighbor, circle window)."""
    h, w = feats[0].shape[-2:]
    bank = torch.stack(feats, dim=1)[None]  # (1, C, T, h, w)
    gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    dist = (
        (gy.view(h, w, 1, 1) - gy.view(1, 1, h, w)) ** 2
        + (gx.view(h, w, 1, 1) - gx.view(1, 1, h, w)) ** 2
    ) ** 0.5
    nb = (dist < neighbor_range // 2).view(h * w, h * w)
    seg_bank = [pil_nearest_onehot(mask, h, w)]
    softs, masks = [], []
    for t in range(1, len(feats)):
        key_start = max(0, t - precede_frames)
        key = torch.cat([bank[:, :, 0:1], bank[:, :, key_start:t]], dim=2)
        value = torch.cat([seg_bank[0].unsqueeze(2), torch.stack(seg_bank[key_start:t], 2)], 2)
        logit = vfs_attention(bank[:, :, t], key, value, nb, temperature, topk)
        seg_bank.append(logit)
        softs.append(logit[0])
        pred = F.interpolate(logit, size=(H, W), mode="bilinear", align_corners=False)
        lo = pred.view(1, 3, -1).min(-1)[0].view(1, 3, 1, 1)
        hi = pred.view(1, 3, -1).max(-1)[0].view(1, 3, 1, 1)
        pred = torch.where(hi > 0, (pred - lo) / (hi - lo + 1e-12), pred)
        masks.append(pred.argmax(1)[0].numpy())
    return softs, masks


def crw_reference(feats, mask, n_context, radius, topk, temperature):
    """CropMAE/CRW test(): video padded with n_context copies of frame 0, long_mem [0]."""
    h, w = feats[0].shape[-2:]
    padded = [feats[0]] * n_context + list(feats)
    fe = torch.stack(padded, dim=1)[None]  # (1, C, N_total, h, w)
    onehot = np.stack([mask == i for i in range(3)], axis=-1)
    small = cv2.resize(np.float32(onehot), (w, h), interpolation=cv2.INTER_LINEAR)
    lbls = torch.from_numpy(np.stack([small] * len(padded)))  # (N_total, h, w, K)
    n = len(padded) - n_context
    ss = torch.arange(n_context)[None].repeat(n, 1) + torch.arange(n)[:, None]
    key_indices = torch.cat([torch.zeros(n, 1).long(), ss], dim=-1)
    keys, query = fe[:, :, key_indices].flatten(-2), fe[:, :, n_context:].flatten(-2)
    gx, gy = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    d = (
        (gx[None, None] - gx[:, :, None, None]) ** 2 + (gy[None, None] - gy[:, :, None, None]) ** 2
    ).float() ** 0.5
    D = (d < radius)[None].float().flatten(-4, -3).flatten(-2)
    D[D == 0] = -1e10
    D[D == 1] = 0
    Ws, Is = [], []
    for b in range(0, n, 2):
        _k, _q = keys[:, :, b : b + 2], query[:, :, b : b + 2]
        w_s, i_s = [], []
        for pb in range(0, _k.shape[-1], 100):
            A = torch.einsum("ijklm,ijkn->iklmn", _k, _q[..., pb : pb + 100])
            A[0, :, 1:] += D[..., pb : pb + 100]
            _, nb, tt, h1w1, hw = A.shape
            A = A.view(nb, tt * h1w1, hw) / temperature
            weights, ids = torch.topk(A, topk, dim=-2)
            w_s.append(F.softmax(weights, dim=-2))
            i_s.append(ids)
        Ws += list(torch.cat(w_s, dim=-1))
        Is += list(torch.cat(i_s, dim=-1))
    lbls[n_context:] *= 0
    softs, masks = [], []
    for t in range(n):
        ctx = lbls[key_indices[t]].flatten(0, 2).transpose(0, 1)
        pred = (ctx[:, Is[t]] * Ws[t][None]).sum(1).view(-1, h, w).permute(1, 2, 0)
        if t > 0:
            lbls[t + n_context] = pred
            softs.append(pred.permute(2, 0, 1).clone())
            up = cv2.resize(pred.numpy(), (W, H))  # dump_predictions: bilinear, no norm_mask
            masks.append(np.argmax(up, axis=-1))
        else:
            lbls[t + n_context] = lbls[0]
    return softs, masks


def check(ref, got):
    (ref_soft, ref_masks), (soft, masks) = ref, got
    assert len(soft) == len(ref_soft) == N_FRAMES - 1
    for t, (a, b) in enumerate(zip(soft, ref_soft, strict=True)):
        torch.testing.assert_close(a, b.float(), rtol=1e-4, atol=1e-5, msg=f"frame {t + 1}")
    for t, (a, b) in enumerate(zip(masks[1:], ref_masks, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {t + 1}")


def test_queue_mode_is_dino_reference():
    frames, mask = video()
    ref = dino_reference(per_frame_features(frames), mask, M, 2, topk=4)
    check(ref, ours("queue", frames, mask, topk=4, temperature=0.1, radius=2, window="square"))


def test_vfs_mode_is_vfs_reference():
    frames, mask = video()
    ref = vfs_reference(per_frame_features(frames), mask, M, 6, topk=5, temperature=0.07)
    check(ref, ours("vfs", frames, mask, topk=5, temperature=0.07, radius=3))


def test_crw_mode_is_crw_reference():
    frames, mask = video()
    ref = crw_reference(per_frame_features(frames), mask, M, 3, topk=6, temperature=0.7)
    kw = dict(restrict_first=False, first_labels="bilinear", minmax_normalize=False)
    check(ref, ours("crw", frames, mask, topk=6, temperature=0.7, radius=3, **kw))


@pytest.mark.parametrize("wrong", ["queue", "crw"])
def test_modes_differ_on_early_frames(wrong):
    """The VFS reference is not reproduced by another mode: the modes are not cosmetic."""
    frames, mask = video()
    ref_soft, _ = vfs_reference(per_frame_features(frames), mask, M, 6, topk=5, temperature=0.07)
    soft, _ = ours(wrong, frames, mask, topk=5, temperature=0.07, radius=3)
    assert not torch.allclose(soft[0], ref_soft[0], atol=1e-3)


def test_context_indices_early_and_late():
    assert [context_indices(t, 3, "queue") for t in (1, 2, 5)] == [[0], [0, 1], [0, 2, 3, 4]]
    assert [context_indices(t, 3, "vfs") for t in (1, 2, 5)] == [[0, 0], [0, 0, 1], [0, 2, 3, 4]]
    assert context_indices(1, 3, "crw") == [0, 0, 0, 0]
    assert context_indices(2, 3, "crw") == [0, 0, 0, 1]
    assert context_indices(5, 3, "crw") == [0, 2, 3, 4]
    assert context_indices(4, 0, "crw") == [0]


def test_first_labels_match_pil_nearest_and_cv2_bilinear():
    _, mask = video()
    ids = np.array([0, 1, 2])
    near = mask_to_labels(mask, ids, (5, 7), "cpu", "nearest")
    torch.testing.assert_close(near, pil_nearest_onehot(mask, 5, 7)[0])
    bil = mask_to_labels(mask, ids, (5, 7), "cpu", "bilinear")
    onehot = np.float32(np.stack([mask == i for i in ids], axis=-1))
    ref = cv2.resize(onehot, (7, 5), interpolation=cv2.INTER_LINEAR)
    torch.testing.assert_close(bil, torch.from_numpy(ref).permute(2, 0, 1), atol=1e-6, rtol=0)
    assert ((bil > 0.01) & (bil < 0.99)).any()  # soft at object borders, unlike nearest


def test_upsample_via_input_is_dino_argmax_then_pil_nearest():
    """DINO: bilinear x patch size to the input, norm_mask, argmax, PIL nearest to the original."""
    ids = np.array([0, 1, 2])
    differs = False
    for seed in range(4):
        soft = torch.softmax(torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(seed)), 0)
        up = F.interpolate(soft[None], scale_factor=2, mode="bilinear", align_corners=False)[0]
        for c in range(3):
            if up[c].max() > 0:
                up[c] = up[c] - up[c].min()
                up[c] = up[c] / up[c].max()
        seg = up.argmax(0).numpy().astype(np.uint8)
        ref = np.array(Image.fromarray(seg).resize((21, 15), Image.NEAREST))
        got = labels_to_mask(soft, ids, (15, 21), True, via=(8, 10))
        np.testing.assert_array_equal(got, ref)
        differs |= not np.array_equal(got, labels_to_mask(soft, ids, (15, 21), True))
    assert differs  # the switch changes masks: it is not cosmetic

"""eval.py's numbers: top-k, mean class accuracy, and the running accuracy of online models."""
import numpy as np
import paddle

from scoring import average_views, metrics, running_metrics, view_frame_scores, view_scores
from models import TSM
from models.online import OnlineTSM


def test_metrics_by_hand():
    # 4 videos, 6 classes; label 0 is right, label 1 wrong at top-1 but in the top 5,
    # label 2 is right, label 1 again wrong and ranked last
    scores = np.array([[.9, .1, 0, 0, 0, 0],
                       [.5, .1, .4, 0, 0, 0],
                       [0, 0, 1., 0, 0, 0],
                       [0, -1., .2, .3, .4, .5]])
    labels = np.array([0, 1, 2, 1])
    result = metrics(scores, labels, num_classes=6)
    assert result['top1'] == 0.5 and result['top5'] == 0.75 and result['num_videos'] == 4
    # recalls: class 0 -> 1, class 1 -> 0 (both wrong), class 2 -> 1; absent classes ignored
    assert result['mean_class_acc'] == 2 / 3


def test_metrics_with_fewer_than_five_classes_reports_top_k():
    result = metrics(np.array([[.2, .3, .5]]), np.array([0]), num_classes=3)
    assert result['top3'] == 1.0 and result['top1'] == 0.0 and 'top5' not in result


def test_running_metrics_by_hand():
    # frame logits [M=3, T=4, K=2]; the running prediction is the mean of frames 1..k
    frames = np.array([
        [[1, 0], [0, 3], [0, 0], [0, 0]],   # label 1: wrong, right, right, right -> 2 frames
        [[0, 1], [0, 1], [0, 1], [0, 1]],   # label 1: right from the first frame -> 1
        [[5, 0], [0, 1], [0, 1], [0, 1]],   # label 1: wrong throughout (5 > 3 at the end)
    ], dtype=np.float32)
    labels = np.array([1, 1, 1])
    result = running_metrics(frames, labels)
    assert result['running_top1'] == [round(1 / 3, 4), round(2 / 3, 4), round(2 / 3, 4),
                                      round(2 / 3, 4)]
    assert result['frames_to_right'] == 1.5  # videos 0 and 1; video 2 is never right


def test_right_then_wrong_then_right_counts_from_the_last_switch():
    frames = np.array([[[0, 1], [4, 0], [0, 9], [0, 1]]], dtype=np.float32)  # label 1
    # running means: [0,1] right, [2,.5] wrong, [1.33,3.33] right, [1,2.75] right
    result = running_metrics(frames, np.array([1]))
    assert result['running_top1'] == [1.0, 0.0, 1.0, 1.0] and result['frames_to_right'] == 3.0


def test_views_average_as_the_protocol_says():
    # three views of one video, 2 classes: one sure of class 0 (logits 30 vs 0), two leaning
    # to class 1 (0 vs 2, probability 0.88). The mean logits [10, 1.33] pick class 0 (the
    # published protocols rank so); the mean of the softmax, 0.41 vs 0.59, picks class 1.
    raw = np.array([[30., 0.], [0., 2.], [0., 2.]])
    logits = paddle.to_tensor(raw[None].astype('float32'))
    by_logits = average_views(logits, 'logits').numpy()
    by_softmax = average_views(logits, 'softmax').numpy()
    mean = raw.mean(0)
    np.testing.assert_allclose(by_logits[0], np.exp(mean) / np.exp(mean).sum(), rtol=1e-5)
    probs = np.exp(raw) / np.exp(raw).sum(1, keepdims=True)
    np.testing.assert_allclose(by_softmax[0], probs.mean(0), rtol=1e-5)
    assert by_logits.argmax() == 0 and by_softmax.argmax() == 1
    paddle.seed(4)
    model = TSM(num_classes=5, seg_num=4, depth=18)
    model.eval()
    clips = paddle.randn([2, 3, 4, 3, 32, 32])
    with paddle.no_grad():
        views = model(clips.reshape([6, 4, 3, 32, 32])).reshape([2, 3, 5])
        np.testing.assert_allclose(view_scores(model, clips, 'logits').numpy(),
                                   average_views(views, 'logits').numpy(), rtol=1e-5, atol=1e-7)


def test_frame_scores_of_eval_are_what_the_stream_computes():
    paddle.seed(3)
    model = TSM(num_classes=5, seg_num=4, depth=18, shift_mode='online')
    model.eval()
    clips = paddle.randn([2, 1, 4, 3, 32, 32])  # [B, V, T, 3, H, W]
    with paddle.no_grad():
        probs, frames = view_frame_scores(model, clips)
        np.testing.assert_allclose(probs.numpy(), view_scores(model, clips).numpy(), atol=1e-6)
        for b in range(2):
            engine = OnlineTSM(model, 32)
            streamed = [engine.step(clips[b, 0, t][None]).numpy()[0] for t in range(4)]
            np.testing.assert_allclose(frames.numpy()[b], np.stack(streamed), rtol=1e-5,
                                       atol=1e-5)

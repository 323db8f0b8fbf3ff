using Conic.Data;

namespace Conic.Evaluation;

/// <summary>A detector's box for an image: [x, y, width, height] in pixels, its category and confidence.</summary>
public sealed record Detection(int ImageId, int CategoryId, double[] Bbox, double Score);

/// <summary>COCO box AP over IoU 0.50:0.05:0.95, at 0.50 and at 0.75 (area "all", 100 detections per image), and AP per category.</summary>
public sealed record DetectionScores(double AP, double AP50, double AP75, IReadOnlyDictionary<int, double> CategoryAP);

/// <summary>
/// Box average precision exactly as COCO's evaluation (pycocotools' COCOeval, iouType "bbox") defines it, for the
/// "all" area range: per image and category the highest-scoring 100 detections are matched greedily, best score
/// first, to the unmatched ground-truth box of highest IoU at or above each threshold (crowd boxes are ignored and
/// may absorb any number of detections, their IoU taken over the detection's area); over all images the matches are
/// ranked by score, precision is made non-increasing from the right and read at the 101 recall points 0, 0.01, …, 1
/// (the first rank whose recall reaches the point; 0 beyond the last). AP is the mean over thresholds, recall points
/// and the categories that have a non-crowd ground-truth box. Written here because COCO's is Python and C.
/// </summary>
public static class CocoEvaluation
{
    /// <summary>0.50, 0.55, …, 0.95 as numpy.linspace(0.5, 0.95, 10) computes them (a box whose IoU equals one counts the same).</summary>
    public static readonly double[] IoUThresholds = Enumerable.Range(0, 10).Select(i => i == 9 ? 0.95 : i * ((0.95 - 0.5) / 9) + 0.5).ToArray();
    const int RecallPoints = 101;

    /// <summary>
    /// Scores <paramref name="detections"/> against the boxes of <paramref name="truth"/>: every image and category it
    /// lists is evaluated (an image without boxes still turns its detections into false positives).
    /// </summary>
    public static DetectionScores Evaluate(CocoFile truth, IReadOnlyList<Detection> detections, int maxDetections = 100)
    {
        var imageIds = truth.Images.Select(i => i.Id).Distinct().Order().ToArray();
        var known = imageIds.ToHashSet();
        if (detections.FirstOrDefault(d => !known.Contains(d.ImageId)) is Detection stray)
            throw new ArgumentException($"a detection names image {stray.ImageId}, which the ground truth does not have");
        var truthByKey = truth.Annotations.ToLookup(a => (a.ImageId, a.CategoryId));
        var detectionsByKey = detections.ToLookup(d => (d.ImageId, d.CategoryId));
        var categories = truth.Categories.Select(c => c.Id).Distinct().Order().ToArray();

        // precision[t][category] over the recall points; null for a category without non-crowd ground truth.
        var precision = new double[IoUThresholds.Length][][];
        for (int t = 0; t < IoUThresholds.Length; t++) precision[t] = new double[categories.Length][];
        for (int k = 0; k < categories.Length; k++)
        {
            var ranked = new List<(double Score, bool[] Matched, bool[] Ignored)>();
            int counted = 0;
            foreach (int image in imageIds)
            {
                var boxes = truthByKey[(image, categories[k])].OrderBy(g => g.Iscrowd != 0 ? 1 : 0).ToArray();  // stable: crowd last
                var found = detectionsByKey[(image, categories[k])].OrderByDescending(d => d.Score).Take(maxDetections).ToArray();
                counted += boxes.Count(g => g.Iscrowd == 0);
                ranked.AddRange(MatchImage(boxes, found));
            }
            if (counted == 0) continue;
            var order = ranked.Select((r, i) => (r, i)).OrderByDescending(x => x.r.Score).Select(x => x.r).ToArray();  // stable
            for (int t = 0; t < IoUThresholds.Length; t++)
                precision[t][k] = InterpolatedPrecision(order.Select(r => (r.Matched[t], r.Ignored[t])).ToArray(), counted);
        }

        double Mean(IEnumerable<int> thresholds, IEnumerable<int> categoryIndices) =>
            thresholds.SelectMany(t => categoryIndices.Where(k => precision[t][k] != null).SelectMany(k => precision[t][k])).DefaultIfEmpty(double.NaN).Average();
        var all = Enumerable.Range(0, IoUThresholds.Length);
        var everyCategory = Enumerable.Range(0, categories.Length).ToArray();
        var perCategory = everyCategory.Where(k => precision[0][k] != null).ToDictionary(k => categories[k], k => Mean(all, [k]));
        return new DetectionScores(Mean(all, everyCategory), Mean([0], everyCategory), Mean([5], everyCategory), perCategory);
    }

    /// <summary>Each detection (best score first) with, per threshold, whether it matched and whether it is ignored (matched to a crowd box).</summary>
    static IEnumerable<(double Score, bool[] Matched, bool[] Ignored)> MatchImage(CocoAnnotation[] boxes, Detection[] found)
    {
        int thresholds = IoUThresholds.Length;
        var taken = new bool[thresholds, boxes.Length];
        var overlaps = found.Select(d => boxes.Select(g => IoU(d.Bbox, g.Bbox, g.Iscrowd != 0)).ToArray()).ToArray();
        foreach (var (detection, overlap) in found.Zip(overlaps))
        {
            var matched = new bool[thresholds];
            var ignored = new bool[thresholds];
            for (int t = 0; t < thresholds; t++)
            {
                double best = Math.Min(IoUThresholds[t], 1 - 1e-10);
                int match = -1;
                for (int g = 0; g < boxes.Length; g++)
                {
                    bool crowd = boxes[g].Iscrowd != 0;
                    if (taken[t, g] && !crowd) continue;
                    // Matched to a real box already: crowd boxes (sorted last) cannot take it over.
                    if (match > -1 && boxes[match].Iscrowd == 0 && crowd) break;
                    if (overlap[g] < best) continue;
                    best = overlap[g];
                    match = g;
                }
                if (match == -1) continue;
                matched[t] = true;
                ignored[t] = boxes[match].Iscrowd != 0;
                taken[t, match] = true;
            }
            yield return (detection.Score, matched, ignored);
        }
    }

    /// <summary>Precision at the 101 recall points of detections ranked by score (ignored ones neither true nor false positives).</summary>
    static double[] InterpolatedPrecision((bool Matched, bool Ignored)[] ranked, int groundTruth)
    {
        var recall = new double[ranked.Length];
        var precision = new double[ranked.Length];
        double truePositives = 0, falsePositives = 0;
        for (int i = 0; i < ranked.Length; i++)
        {
            if (!ranked[i].Ignored) { if (ranked[i].Matched) truePositives++; else falsePositives++; }
            recall[i] = truePositives / groundTruth;
            precision[i] = truePositives / (truePositives + falsePositives + Spacing1);
        }
        for (int i = ranked.Length - 1; i > 0; i--) precision[i - 1] = Math.Max(precision[i - 1], precision[i]);
        var points = new double[RecallPoints];
        for (int r = 0; r < RecallPoints; r++)
        {
            double point = r == RecallPoints - 1 ? 1.0 : r * 0.01;  // numpy.linspace(0, 1, 101)
            int at = Array.FindIndex(recall, v => v >= point);  // numpy.searchsorted(recall, point, side="left")
            points[r] = at < 0 ? 0 : precision[at];
        }
        return points;
    }

    /// <summary>numpy.spacing(1): COCO adds it to precision's denominator, which keeps 0/0 at 0.</summary>
    const double Spacing1 = 2.220446049250313e-16;

    /// <summary>IoU of two [x, y, w, h] boxes; against a crowd box, the intersection over the detection's own area.</summary>
    public static double IoU(double[] detection, double[] truth, bool crowd = false)
    {
        double width = Math.Min(detection[0] + detection[2], truth[0] + truth[2]) - Math.Max(detection[0], truth[0]);
        double height = Math.Min(detection[1] + detection[3], truth[1] + truth[3]) - Math.Max(detection[1], truth[1]);
        if (width <= 0 || height <= 0) return 0;
        double intersection = width * height, detectionArea = detection[2] * detection[3];
        double union = crowd ? detectionArea : detectionArea + truth[2] * truth[3] - intersection;
        return intersection / union;
    }
}

using Conic.Data;
using Conic.Evaluation;

namespace Conic.Tests;

/// <summary>COCO box AP on hand-built cases whose value follows from COCO's definition (pycocotools' COCOeval).</summary>
public class CocoEvaluationTests
{
    static CocoFile Truth(int images, params (int Image, int Category, double[] Box, bool Crowd)[] boxes) => new(
        Enumerable.Range(1, images).Select(i => new CocoImage(i, $"{i}.png", 100, 100)).ToArray(),
        boxes.Select((b, i) => new CocoAnnotation(i + 1, b.Image, b.Category, b.Box, b.Box[2] * b.Box[3], b.Crowd ? 1 : 0)).ToArray(),
        [new CocoCategory(1, "a"), new CocoCategory(2, "b"), new CocoCategory(3, "never present")]);

    /// <summary>COCO's precision is TP / (TP + FP + 2.2e-16): one hit reads 0.9999999999999998, so compare to 12 places.</summary>
    static void AssertScores((double AP, double AP50, double AP75) expected, DetectionScores actual)
    {
        Assert.Equal(expected.AP, actual.AP, 12);
        Assert.Equal(expected.AP50, actual.AP50, 12);
        Assert.Equal(expected.AP75, actual.AP75, 12);
    }

    static readonly double[] BoxA = [10, 10, 20, 20], BoxB = [50, 40, 30, 20], BoxC = [5, 60, 10, 30];

    [Fact]
    public void PerfectDetectionsScoreOne()
    {
        var truth = Truth(2, (1, 1, BoxA, false), (1, 2, BoxB, false), (2, 1, BoxC, false));
        var scores = CocoEvaluation.Evaluate(truth, [new(1, 1, BoxA, 0.9), new(1, 2, BoxB, 0.8), new(2, 1, BoxC, 0.7)]);
        AssertScores((1, 1, 1), scores);
        Assert.Equal([1, 2], scores.CategoryAP.Keys.Order());  // category 3 has no ground truth: left out, not 0
    }

    [Fact]
    public void AMissedObjectCapsRecallAtHalf()
    {
        // Precision 1 up to recall 0.5: the recall points 0, 0.01, ..., 0.50 (51 of 101) read 1, the rest 0.
        var truth = Truth(2, (1, 1, BoxA, false), (2, 1, BoxC, false));
        var scores = CocoEvaluation.Evaluate(truth, [new(1, 1, BoxA, 0.9)]);
        Assert.Equal(51.0 / 101, scores.AP, 12);
    }

    [Fact]
    public void ADuplicateCostsOnlyWhenItOutranksTheMatch()
    {
        var truth = Truth(1, (1, 1, BoxA, false));
        // A duplicate below the match is a false positive after full recall: precision at every recall point stays 1.
        Assert.Equal(1.0, CocoEvaluation.Evaluate(truth, [new(1, 1, BoxA, 0.9), new(1, 1, BoxA, 0.8)]).AP, 12);
        // A false positive ranked first: precision 1/2 when recall reaches 1, and made non-increasing, 1/2 everywhere.
        Assert.Equal(0.5, CocoEvaluation.Evaluate(truth, [new(1, 1, BoxB, 0.95), new(1, 1, BoxA, 0.9)]).AP, 12);
        // A detection of the wrong category is not a match.
        Assert.Equal(0.0, CocoEvaluation.Evaluate(truth, [new(1, 2, BoxA, 0.9)]).AP);
    }

    [Fact]
    public void IoUThresholdsCountOneTenthEach()
    {
        var truth = Truth(1, (1, 1, [0, 0, 10, 10], false));
        // IoU 0.78 passes 0.50 ... 0.75 (6 of 10 thresholds); IoU 0.72 passes 0.50 ... 0.70 (5 of 10), not 0.75.
        var high = CocoEvaluation.Evaluate(truth, [new(1, 1, [0, 0, 10, 7.8], 0.9)]);
        AssertScores((0.6, 1, 1), high);
        var low = CocoEvaluation.Evaluate(truth, [new(1, 1, [0, 0, 10, 7.2], 0.9)]);
        AssertScores((0.5, 1, 0), low);
        Assert.Equal(0.72, CocoEvaluation.IoU([0, 0, 10, 7.2], [0, 0, 10, 10]), 12);
    }

    [Fact]
    public void PrecisionIsInterpolatedAtOneHundredAndOneRecallPoints()
    {
        // Three objects; ranked: hit, miss, hit. Recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3 -> made non-increasing
        // from the right: 1, 2/3, 2/3. Recall points 0..0.33 (34) read 1, 0.34..0.66 (33) read 2/3, 0.67..1 read 0.
        var truth = Truth(3, (1, 1, BoxA, false), (2, 1, BoxB, false), (3, 1, BoxC, false));
        var scores = CocoEvaluation.Evaluate(truth, [new(1, 1, BoxA, 0.9), new(2, 1, BoxC, 0.8), new(3, 1, BoxC, 0.7)]);
        Assert.Equal((34 + 33 * 2.0 / 3) / 101, scores.AP, 12);
    }

    [Fact]
    public void CrowdBoxesAbsorbDetectionsWithoutCounting()
    {
        // A detection inside a crowd region is neither a hit nor a false positive; the crowd box is not an object to find.
        var truth = Truth(1, (1, 1, BoxA, false), (1, 1, [40, 40, 50, 50], true));
        var scores = CocoEvaluation.Evaluate(truth, [new(1, 1, [45, 45, 20, 20], 0.95), new(1, 1, [60, 60, 10, 10], 0.94), new(1, 1, BoxA, 0.9)]);
        Assert.Equal(1.0, scores.AP, 12);
        Assert.Equal(0.16, CocoEvaluation.IoU([45, 45, 20, 20], [40, 40, 50, 50]), 12);
        Assert.Equal(1.0, CocoEvaluation.IoU([45, 45, 20, 20], [40, 40, 50, 50], crowd: true), 12);
    }

    [Fact]
    public void OnlyTheBestHundredDetectionsOfAnImageCount()
    {
        var truth = Truth(2, (1, 1, BoxA, false));
        var misses = Enumerable.Range(0, 100).Select(i => new Detection(1, 1, BoxB, 0.5 + i / 1000.0)).ToList();
        Assert.Equal(0.0, CocoEvaluation.Evaluate(truth, [.. misses, new(1, 1, BoxA, 0.1)]).AP);
        Assert.True(CocoEvaluation.Evaluate(truth, [.. misses.Skip(1), new(1, 1, BoxA, 0.1)]).AP > 0);
        // A detection on an image without objects is a false positive; on an image the ground truth lacks, an error.
        Assert.Equal(0.5, CocoEvaluation.Evaluate(truth, [new(2, 1, BoxA, 0.95), new(1, 1, BoxA, 0.9)]).AP, 12);
        Assert.Throws<ArgumentException>(() => CocoEvaluation.Evaluate(truth, [new(7, 1, BoxA, 0.9)]));
    }
}

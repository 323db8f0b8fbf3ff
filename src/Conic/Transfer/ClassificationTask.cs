using Conic.Data;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Transfer;

/// <summary>A fine-tuned classifier's top-1 accuracy on the test split, with how many labels it was trained on.</summary>
public sealed record ClassificationResult(double Accuracy, IReadOnlyList<ClassAccuracy> Classes, int LabelledImages, double LabelFraction,
                                          int TestImages, double TrainImagesPerSecond, double InferenceImagesPerSecond,
                                          string Initialisation, bool FrozenBackbone);

/// <summary>One class's accuracy (null without test images of it).</summary>
public sealed record ClassAccuracy(string Name, double? Accuracy, int TestImages);

/// <summary>
/// Image classification with a share of the labels (the semi-supervised protocol of SimCLR and BYOL: 1 %, 10 %,
/// 100 %): a linear layer on the pooled features, cross-entropy, random flips and shifts of up to 1/8 of the side;
/// top-1 accuracy on the test split. The labelled subset is balanced over the classes and seeded.
/// </summary>
sealed class ClassificationTask : FinetuneTask
{
    readonly ImageDataset train, test;
    readonly IReadOnlyList<string> classNames;
    readonly double fraction;

    ClassificationTask(ImageDataset train, ImageDataset test, IReadOnlyList<string> classNames, double fraction)
    {
        this.train = train;
        this.test = test;
        this.classNames = classNames;
        this.fraction = fraction;
    }

    public static ClassificationTask Load(FinetuneOptions options, int? side)
    {
        var splits = DatasetLoader.Load(options.DataPath, side ?? DatasetLoader.DefaultImageSize);
        var all = splits.Train;
        var test = splits.Test ?? throw new ConicException($"{all.Source}: no test split to measure the classifier on");
        if (all.Labels == null || test.Labels == null)
            throw new ConicException($"{(all.Labels == null ? all.Source : test.Source)}: classification needs labelled images (IDX labels or class subfolders)");
        if (all.Height != all.Width) throw new ConicException($"{all.Source}: {all.Height}x{all.Width} images; classification fine-tunes square images");
        int classes = Math.Max(all.ClassCount, test.ClassCount);
        var names = Enumerable.Range(0, classes).Select(c => all.ClassNames?[c] ?? $"class {c}").ToArray();
        return new ClassificationTask(all.Subset(Labelled(all.Labels, classes, options.LabelFraction, options.Seed)), test, names, options.LabelFraction);
    }

    /// <summary>round(fraction × images) of every class (at least one), drawn at random with the seed.</summary>
    static int[] Labelled(int[] labels, int classes, double fraction, int seed)
    {
        var random = new Random(Seeds.Derive(seed, 0, 7));
        return Enumerable.Range(0, classes).SelectMany(c =>
        {
            var members = Enumerable.Range(0, labels.Length).Where(i => labels[i] == c).ToArray();
            random.Shuffle(members);
            return members.Take(Math.Max(1, (int)Math.Round(fraction * members.Length)));
        }).Order().ToArray();
    }

    public override string Name => "classification";
    public override IReadOnlyList<string> ClassNames => classNames;
    public override int TrainCount => train.Count;
    public override int Channels => train.Channels;
    public override int Side => train.Height;
    public override InputNormalization Statistics()
    {
        var (mean, std) = train.ChannelStatistics();
        return new InputNormalization(mean, std);
    }

    public override TaskNetwork CreateNetwork(Backbone backbone) => TransferTask.Classification.CreateNetwork(backbone, classNames.Count);

    public override Tensor Loss(TaskNetwork network, int[] batch, bool[] flipped, InputNormalization normalization, Device device)
    {
        var images = Flipped(train.Gather(batch).to(device), flipped);
        var labels = tensor(batch.Select(i => (long)train.Labels![i]).ToArray(), device: device);
        return nn.functional.cross_entropy(network.call(normalization.FromPixels(Shifted(images, batch))), labels);
    }

    /// <summary>Each image moved by up to 1/8 of its side in x and y (zero padding), the shift seeded by the image's index and the step.</summary>
    Tensor Shifted(Tensor images, int[] batch)
    {
        int side = (int)images.shape[2], most = Math.Max(1, side / 8);
        var padded = nn.functional.pad(images, [most, most, most, most]);
        var random = new Random(Seeds.Derive(batch[0], batch.Length, 11));
        var moved = Enumerable.Range(0, batch.Length).Select(b =>
            padded[b].narrow(1, random.Next(2 * most + 1), side).narrow(2, random.Next(2 * most + 1), side)).ToArray();
        return stack(moved);
    }

    /// <summary>Predicted classes of every test image.</summary>
    long[] Predict(TaskNetwork network, InputNormalization normalization, Device device, int batchSize)
    {
        network.eval();
        using var noGrad = no_grad();
        var predicted = new long[test.Count];
        for (int start = 0; start < test.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = Enumerable.Range(start, Math.Min(batchSize, test.Count - start)).ToArray();
            network.call(normalization.FromPixels(test.Gather(batch).to(device))).argmax(1).cpu().data<long>().ToArray().CopyTo(predicted, start);
        }
        return predicted;
    }

    double Accuracy(long[] predicted) => Enumerable.Range(0, test.Count).Count(i => predicted[i] == test.Labels![i]) / (double)test.Count;

    public override IReadOnlyList<(string Name, double Value)> Validate(TaskNetwork network, InputNormalization normalization, Device device, int batchSize) =>
        [("accuracy", Accuracy(Predict(network, normalization, device, batchSize)))];

    public override IReadOnlyList<string> Finish(TaskNetwork network, InputNormalization normalization, Device device, int batchSize,
                                                 RunFolder folder, FinetuneSummary summary)
    {
        long[] predicted = null!;
        double seconds = Timed(() => predicted = Predict(network, normalization, device, batchSize));
        var perClass = classNames.Select((name, c) =>
        {
            var members = Enumerable.Range(0, test.Count).Where(i => test.Labels![i] == c).ToArray();
            return new ClassAccuracy(name, members.Length == 0 ? null : members.Count(i => predicted[i] == c) / (double)members.Length, members.Length);
        }).ToArray();
        var result = new ClassificationResult(Accuracy(predicted), perClass, train.Count, fraction, test.Count, summary.TrainImagesPerSecond,
                                              test.Count / seconds, summary.Initialisation, summary.FrozenBackbone);
        RunJson.WriteAtomically(folder.Evaluation, result);
        var lines = new List<string>
        {
            Summary($"classification: top-1 {Percent(result.Accuracy)}, trained on {train.Count} labelled images ({100 * fraction:G3} %)", test.Count, "test",
                    result.TrainImagesPerSecond, result.InferenceImagesPerSecond, pictures: null),
        };
        lines.AddRange(perClass.Select(c => $"  {c.Name,-14} {(c.Accuracy is double a ? Percent(a) : "n/a"),8}  ({c.TestImages} test images)"));
        lines.AddRange(perClass.Where(c => c.TestImages == 0).Select(c => $"note: class '{c.Name}' has no test images; accuracy covers the others"));
        return lines;
    }
}

using System.Globalization;
using System.Text;
using Conic.Evaluation;
using Conic.Training;

namespace Conic.Export;

/// <summary>
/// README.md next to exported weights, in the form model hubs read (YAML front matter, then sections): what the
/// encoder is, how it was trained, how to prepare its input, and what it measured (eval.json, when the run has one).
/// </summary>
public static class ModelCard
{
    const string FrontMatterStart = "---\nlibrary_name: conic\n";

    /// <summary>Writes README.md into <paramref name="folder"/> for the weights in <paramref name="weightsFile"/>; returns its path.</summary>
    public static string Write(string folder, string weightsFile, PretrainedModel model, (int Height, int Width) imageSize,
                               EvaluationResult? evaluation)
    {
        var options = model.Options;
        var backbone = model.Backbone.Options;
        string Numbers(float[] values) => string.Join(", ", values.Select(v => v.ToString("G6", CultureInfo.InvariantCulture)));
        var card = new StringBuilder();
        card.Append(FrontMatterStart);
        card.AppendLine($"tags: [self-supervised, image-feature-extraction, {options.Method}, {backbone.ArchitectureName}]");
        card.AppendLine("pipeline_tag: image-feature-extraction");
        card.AppendLine("---");
        card.AppendLine($"# {backbone.ArchitectureName} encoder pretrained with {options.Method} (Conic)\n");
        string shape = backbone.IsResNet ? $"width {backbone.Width}, stem {model.Backbone.StemDescription}" : model.Backbone.StemDescription;
        card.AppendLine($"Weights: `{Path.GetFileName(weightsFile)}`. A {backbone.ArchitectureName} backbone ({shape}, {backbone.InputChannels} input " +
                        $"channel{(backbone.InputChannels == 1 ? "" : "s")}, {model.Backbone.FeatureDim}-d features {model.Backbone.PoolingDescription}, " +
                        $"no classifier), {model.Backbone.NamesAfter} parameter names.\n");
        card.AppendLine("## Training\n");
        card.AppendLine($"Self-supervised ({options.Method}, no labels) on `{options.DataPath ?? Data.DatasetLoader.DefaultFashionMnist}`: " +
                        $"{model.InstanceCount} instances, {options.LengthText}, batch {options.BatchSize}, seed {options.Seed}. " +
                        "Every option is in the run's config.json.\n");
        card.AppendLine("## Input\n");
        card.AppendLine($"Images of {imageSize.Height}x{imageSize.Width} px (shorter side scaled, centre crop), pixels scaled to [0, 1], " +
                        $"then normalised per channel with mean [{Numbers(model.Normalization.Mean)}] and std [{Numbers(model.Normalization.Std)}] " +
                        "(the ONNX export does this inside the graph).\n");
        card.AppendLine("## Evaluation\n");
        if (evaluation == null)
        {
            card.AppendLine("Not evaluated (`conic eval` needs labelled train and test splits).\n");
        }
        else
        {
            card.AppendLine($"Frozen features, test split ({evaluation.TestImages} images): weighted kNN (k = {evaluation.KnnK}) " +
                            $"{evaluation.KnnTop1:P2}, linear probe {evaluation.LinearTop1:P2}; kNN on raw pixels {evaluation.RawPixelKnnTop1:P2}.\n");
        }
        card.AppendLine("## Intended use\n");
        card.AppendLine("Image embeddings for retrieval, clustering, kNN or linear classifiers, and as a starting point for " +
                        "fine-tuning on images like the training data. Not evaluated beyond the numbers above; check it on your own data.");
        // A README.md that is not a Conic card (a user's own, in the folder --out points to) is never overwritten.
        string path = Path.Combine(folder, "README.md");
        if (File.Exists(path) && !File.ReadAllText(path).StartsWith(FrontMatterStart, StringComparison.Ordinal))
            path = Path.ChangeExtension(weightsFile, ".model-card.md");
        Runtime.AtomicFile.WriteText(path, card.ToString());
        return path;
    }
}

using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Conic.Data;
using Conic.Evaluation;
using Conic.Training;
using static TorchSharp.torch;
using Conic.Runtime;

namespace Conic.Reporting;

/// <summary>
/// report.html in a run folder: one self-contained page (figures embedded as PNG, no server, no internet) with the
/// evaluation, the training curves, activation maps (optionally beside a second run's), nearest-neighbour
/// retrieval and the full configuration.
/// </summary>
public static class HtmlReport
{
    /// <summary>The report's file name in the run folder.</summary>
    public const string FileName = "report.html";
    const int MapImages = 12, Queries = 6, Neighbours = 8, RetrievalBank = 10_000, EmbeddedPoints = 1_500;

    /// <param name="compare">A second run whose activation maps are shown under this run's (e.g. the λ = 0 ablation).</param>
    /// <param name="log">Where a line before each slow part (activation maps, t-SNE, retrieval) goes; null for silence.</param>
    public static string Write(string runDirectory, PretrainedModel model, DatasetSplits data, PretrainedModel? compare = null, string? compareName = null,
                               TextWriter? log = null)
    {
        var html = Begin($"Conic run {runDirectory}");
        var options = model.Options;
        html.AppendLine($"<p>Method <b>{Encode(options.Method)}</b>, {options.Backbone.Describe()}, {options.LengthText}, " +
                        $"batch {options.BatchSize}, {model.InstanceCount} instances, seed {options.Seed}.</p>");

        Evaluation(html, runDirectory);
        Curves(html, runDirectory);
        var images = data.Test ?? data.Train;
        log?.WriteLine("report: activation maps");
        Maps(html, model, images, compare, compareName);
        log?.WriteLine("report: t-SNE of the test features");
        Embedding(html, model, images);
        log?.WriteLine("report: nearest-neighbour retrieval");
        Retrieval(html, model, data.Train, images, ReferenceEquals(images, data.Train));
        html.AppendLine("<h2>Configuration</h2>");
        html.AppendLine($"<pre>{Encode(JsonSerializer.Serialize(options, RunJson.Options))}</pre>");
        html.AppendLine("</body></html>");

        string path = Path.Combine(runDirectory, FileName);
        Runtime.AtomicFile.WriteText(path, html.ToString());
        return path;
    }

    /// <summary>A page's head, style and title (the style every Conic report shares).</summary>
    public static StringBuilder Begin(string title)
    {
        var html = new StringBuilder();
        html.AppendLine($"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{Encode(title)}</title>");
        html.AppendLine("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}" +
                        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%;margin:6px 0}pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>");
        html.AppendLine($"<h1>{Encode(title)}</h1>");
        return html;
    }

    static void Evaluation(StringBuilder html, string runDirectory)
    {
        string path = new RunFolder(runDirectory).Evaluation;
        html.AppendLine("<h2>Evaluation</h2>");
        var result = File.Exists(path) ? RunJson.Read<EvaluationResult>(path) : null;
        foreach (string warning in RunDiagnosis.Warnings(runDirectory, result))
            html.AppendLine($"<p style=\"color:#b00\"><b>Warning: {Encode(warning)}.</b></p>");
        if (result == null)
        {
            html.AppendLine("<p>Not evaluated yet (<code>conic eval</code>; needs labelled train and test splits).</p>");
            return;
        }
        html.AppendLine("<p>Top-1 accuracy on the test split from frozen backbone features.</p><table><tr><th>measure</th><th>top-1</th></tr>");
        html.AppendLine($"<tr><td>weighted kNN (k={result.KnnK}, T={result.KnnTemperature})</td><td><b>{result.KnnTop1:P2}</b></td></tr>");
        html.AppendLine($"<tr><td>linear probe</td><td><b>{result.LinearTop1:P2}</b></td></tr>");
        html.AppendLine($"<tr><td>kNN on raw pixels (floor)</td><td>{result.RawPixelKnnTop1:P2}</td></tr>");
        html.AppendLine($"<tr><td>kNN on standardised pixels (stricter floor)</td><td>{result.StandardizedPixelKnnTop1:P2}</td></tr>");
        if (result.RawPixelLinearTop1 is double pixelLinear)
            html.AppendLine($"<tr><td>linear probe on raw pixels (floor of the linear probe)</td><td>{pixelLinear:P2}</td></tr>");
        html.AppendLine("</table>");
    }

    static void Curves(StringBuilder html, string runDirectory)
    {
        var metrics = new MetricsCsv(new RunFolder(runDirectory).Metrics);
        var header = metrics.Columns();
        if (header.Length == 0) return;
        (string, double[], double[]) Series(string column)
        {
            var points = metrics.Column(column);
            return (column, points.Select(p => (double)p.Epoch).ToArray(), points.Select(p => p.Value).ToArray());
        }
        int firstTerm = Array.IndexOf(header, "loss"), lastTerm = Array.IndexOf(header, "images_per_second");
        var losses = header[firstTerm..lastTerm].Select(Series).ToArray();
        html.AppendLine("<h2>Training</h2>");
        Figure(html, Figures.LineChart("Loss and its terms", "epoch", "loss", losses), "loss per epoch");
        Figure(html, Figures.LineChart("Learning rate", "epoch", "learning rate", new[] { Series("lr") }), "learning rate");
        Figure(html, Figures.LineChart("Training speed", "epoch", "images/s", new[] { Series("images_per_second") }), "images per second");
        var monitor = Series("monitor_knn_top1");
        if (monitor.Item2.Length > 0)
            Figure(html, Figures.LineChart("Online kNN monitor (train/test subsets)", "epoch", "top-1", new[] { monitor }), "online kNN accuracy");
    }

    static void Maps(StringBuilder html, PretrainedModel model, ImageDataset images, PretrainedModel? compare, string? compareName)
    {
        var chosen = ChooseImages(images, MapImages);
        using var scope = NewDisposeScope();
        var batch = images.Gather(chosen);
        var rows = new List<(string, IReadOnlyList<Figures.Cell>)> { ("input", Inputs(images, chosen)) };
        rows.Add(("this run: " + model.Options.Method + MethodDetail(model.Options), HeatCells(ActivationMaps.Compute(model, batch), chosen, images)));
        if (compare != null)
            rows.Add(((compareName ?? "second run") + ": " + compare.Options.Method + MethodDetail(compare.Options), HeatCells(ActivationMaps.Compute(compare, batch), chosen, images)));
        html.AppendLine("<h2>Where the encoder responds</h2>");
        html.AppendLine("<p>Norm over channels of the backbone's last feature map, upsampled to the image and scaled to [0, 1] per image " +
                        $"(bright = strong response). Rows: {Encode(string.Join("; ", rows.Select(r => r.Item1)))}.</p>");
        Figure(html, Figures.Grid(rows), "activation maps");
    }

    static void Embedding(StringBuilder html, PretrainedModel model, ImageDataset images)
    {
        using var scope = NewDisposeScope();
        var subset = images.Subset(images.SampleIndices(EmbeddedPoints, model.Options.Seed));
        var features = TorchSharp.torch.nn.functional.normalize(FeatureExtractor.Extract(model, subset), dim: 1);
        var plane = Tsne.Embed(features, model.Options.Seed);
        var x = plane[.., 0].data<float>().Select(v => (double)v).ToArray();
        var y = plane[.., 1].data<float>().Select(v => (double)v).ToArray();
        var groups = Enumerable.Range(0, subset.Count)
            .GroupBy(i => subset.Labels == null ? "images" : Label(subset, i))
            .OrderBy(g => subset.Labels == null ? 0 : subset.Labels[g.First()])
            .Select(g => (g.Key, g.Select(i => x[i]).ToArray(), g.Select(i => y[i]).ToArray()))
            .ToArray();
        html.AppendLine("<h2>Test features in two dimensions</h2>");
        html.AppendLine($"<p>t-SNE (perplexity 30) of the normalised backbone features of {subset.Count:N0} images" +
                        (subset.Labels == null ? "." : ", coloured by label (labels are not used to compute it).") + "</p>");
        Figure(html, Figures.Scatter("t-SNE of backbone features", groups), "t-SNE embedding");
    }

    static string MethodDetail(PretrainOptions options) =>
        $" ({string.Join(", ", options.MethodDefinition.Settings.Select(s => $"{s.Flag.TrimStart('-')} {s.Current(options.MethodSettings)}"))})";

    static void Retrieval(StringBuilder html, PretrainedModel model, ImageDataset bank, ImageDataset queries, bool queriesFromBank)
    {
        using var scope = NewDisposeScope();
        var bankIndices = bank.SampleIndices(RetrievalBank, model.Options.Seed);
        var bankSubset = bank.Subset(bankIndices);
        var queryIndices = ChooseImages(queries, Queries);
        var bankFeatures = TorchSharp.torch.nn.functional.normalize(FeatureExtractor.Extract(model, bankSubset), dim: 1);
        var queryFeatures = TorchSharp.torch.nn.functional.normalize(FeatureExtractor.Extract(model, queries.Subset(queryIndices)), dim: 1);
        // A query from the bank would find itself first: take one more and drop it. A small bank gives what it has.
        int shown = Math.Min(Neighbours, bankSubset.Count - (queriesFromBank ? 1 : 0));
        var (scores, neighbours) = queryFeatures.matmul(bankFeatures.t()).topk(shown + (queriesFromBank ? 1 : 0), dim: 1);
        var rows = new List<(string, IReadOnlyList<Figures.Cell>)>();
        for (int q = 0; q < queryIndices.Length; q++)
        {
            var cells = new List<Figures.Cell> { new(Image(queries, queryIndices[q]), "query " + Label(queries, queryIndices[q])) };
            for (int n = queriesFromBank ? 1 : 0; n < neighbours.shape[1]; n++)
            {
                int index = bankIndices[neighbours[q, n].item<long>()];
                cells.Add(new(Image(bank, index), $"{Label(bank, index)} {scores[q, n].item<float>():F2}"));
            }
            rows.Add(($"query {q + 1}", cells));
        }
        html.AppendLine("<h2>Nearest neighbours</h2>");
        html.AppendLine($"<p>Each query (first column) with its {shown} nearest training images by cosine similarity of backbone features " +
                        $"(among {bankSubset.Count:N0}); captions: label and similarity.</p>");
        Figure(html, Figures.Grid(rows), "nearest-neighbour retrieval");
    }

    /// <summary>One image per class in class order when labels exist, then the first images; always the same ones.</summary>
    static int[] ChooseImages(ImageDataset images, int count)
    {
        var chosen = images.Labels == null
            ? new List<int>()
            : Enumerable.Range(0, images.Count).GroupBy(i => images.Labels[i]).OrderBy(g => g.Key).Select(g => g.First()).Take(count).ToList();
        chosen.AddRange(Enumerable.Range(0, images.Count).Where(i => !chosen.Contains(i)).Take(count - chosen.Count));
        return chosen.ToArray();
    }

    static IReadOnlyList<Figures.Cell> Inputs(ImageDataset images, int[] chosen) =>
        chosen.Select(i => new Figures.Cell(Image(images, i), Label(images, i))).ToArray();

    static IReadOnlyList<Figures.Cell> HeatCells(Tensor maps, int[] chosen, ImageDataset images) =>
        chosen.Select((index, k) => new Figures.Cell(Figures.HeatMap(maps[k].flatten().data<float>().ToArray(), images.Height, images.Width), Label(images, index)))
              .ToArray();

    static SkiaSharp.SKBitmap Image(ImageDataset images, int index)
    {
        using var pixels = images.Gather([index]);
        return Figures.Picture(pixels.data<byte>().ToArray(), images.Channels, images.Height, images.Width);
    }

    static string Label(ImageDataset images, int index) =>
        images.Labels == null ? $"#{index}" : images.ClassNames?[images.Labels[index]] ?? images.Labels[index].ToString(CultureInfo.InvariantCulture);

    /// <summary>Appends <paramref name="png"/> to <paramref name="html"/> as an inline image (the report stays one file).</summary>
    public static void Figure(StringBuilder html, byte[] png, string alt) =>
        html.AppendLine($"<img alt=\"{Encode(alt)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\">");

    /// <summary><paramref name="text"/> made safe for HTML.</summary>
    public static string Encode(string text) => WebUtility.HtmlEncode(text);
}

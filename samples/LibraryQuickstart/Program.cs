// Pretrains a small ConIC encoder from C#, evaluates it and embeds images with it, using Conic as a package:
//   dotnet pack src/Conic -o artifacts/packages
//   dotnet run --project samples/LibraryQuickstart -- [DATA] [RUN]
// DATA: a folder of images (one subfolder per class for the evaluation), IDX files, or train/ and test/ folders;
// by default Debian's Fashion-MNIST (apt install dataset-fashion-mnist).
using Conic;
using Conic.Data;
using Conic.Evaluation;
using Conic.Training;
using Conic.Workflows;

string data = args.Length > 0 ? args[0] : DatasetLoader.DefaultFashionMnist;
string run = args.Length > 1 ? args[1] : "runs/library-quickstart";
try
{
    var splits = DatasetLoader.Load(data, log: Console.Error);
    Console.WriteLine($"data: {splits.Train.Count} training images, {splits.Test?.Count ?? 0} test images");

    // Settings are records: the defaults, changed where it matters. Any setting also has a flag (conic pretrain --help)
    // and a config-file name; Set applies one by its flag, as a command line would.
    var options = new PretrainOptions
    {
        DataPath = data, RunDirectory = run, Epochs = 15, WarmupEpochs = 1, Instances = Math.Min(1024, splits.Train.Count), BatchSize = 32, MonitorEvery = 0,
        Backbone = new() { Width = 8 },
    }.WithMethod("conic").Set("--lambda", "1");

    // Pretrain, evaluate (weighted kNN and a linear probe on frozen features) and write report.md/report.html on a
    // worker thread. Ctrl+C cancels before the next step, leaving the run folder at its last finished epoch; running
    // the sample again resumes it (resume: true) to the weights an uninterrupted run would have.
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    var progress = new Progress<TrainingProgress>(p =>
    {
        if (p.Metrics is { } epoch)
            Console.WriteLine($"epoch {epoch.Epoch}/{options.Epochs}: loss {epoch.Loss:F3}, {epoch.ImagesPerSecond:F0} images/s, {p.Remaining:hh\\:mm\\:ss} left");
    });
    using var result = await PretrainRun.ExecuteAsync(options, splits, progress, log: TextWriter.Null, resume: true, cancellation: cancel.Token);
    foreach (string warning in result.Warnings) Console.Error.WriteLine($"warning: {warning}");  // e.g. no better than the pixels
    if (result.Evaluation is { } evaluation)
        Console.WriteLine($"kNN top-1 {evaluation.KnnTop1:P1}, linear probe {evaluation.LinearTop1:P1}, raw pixels {evaluation.RawPixelKnnTop1:P1}");

    // A trained run loads later (in another program) with PretrainedModel.Load(run); here the model is at hand.
    var images = splits.Test ?? splits.Train;
    using var features = FeatureExtractor.Extract(result.Model, images);
    Console.WriteLine($"embeddings: {features.shape[0]} x {features.shape[1]} (first image: " +
                      $"{string.Join(", ", features[0][..4].data<float>().Select(v => v.ToString("F3")))}, ...)");
    return 0;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine($"cancelled: run the sample again to resume {run}");
    return 130;
}
catch (ConicException e)
{
    // Every input problem is one line that names the file or the setting.
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

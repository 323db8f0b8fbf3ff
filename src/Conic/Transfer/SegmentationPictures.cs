using Conic.Data;
using Conic.Models;
using Conic.Reporting;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Transfer;

/// <summary>A picture of what a segmenter does: for a few validation images, the image, the true mask and the predicted one.</summary>
static class SegmentationPictures
{
    public static void Write(string path, DenseNetwork network, SegmentationDataset data, IReadOnlyList<string> classNames,
                             InputNormalization normalization, Device device, int count = 6)
    {
        network.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var index = arange(Kept(0), Kept(Math.Min(count, data.Count)), Kept(1), dtype: ScalarType.Int64);
        var images = data.Images.index_select(0, index);
        var truth = data.Masks.index_select(0, index);
        var predicted = network.call(normalization.FromPixels(images.to(device))).argmax(1).to_type(ScalarType.Byte).cpu();
        int side = data.Side, channels = data.Channels;
        var rows = new List<(string, IReadOnlyList<Figures.Cell>)>();
        for (int i = 0; i < index.shape[0]; i++)
        {
            string name = data.Names[i];
            var cells = new List<Figures.Cell>
            {
                new(Figures.Picture(images[i].data<byte>().ToArray(), channels, side, side), "image"),
                new(Figures.ClassMap(truth[i].data<byte>().ToArray(), side, side), "truth"),
                new(Figures.ClassMap(predicted[i].data<byte>().ToArray(), side, side), "prediction"),
            };
            rows.Add(($"{name}: {Present(truth[i], classNames)}", cells));
        }
        byte[] png = Figures.Grid(rows, cellSize: Math.Max(96, side));
        Runtime.AtomicFile.Write(path, stream => stream.Write(png));
    }

    static string Present(Tensor mask, IReadOnlyList<string> classNames)
    {
        var classes = mask.unique().Item1.data<byte>().ToArray().Where(c => c != 0 && c < classNames.Count).Select(c => classNames[c]);
        return string.Join(", ", classes);
    }
}

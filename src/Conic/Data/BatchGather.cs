using static TorchSharp.torch;

namespace Conic.Data;

/// <summary>Copies the bytes of chosen images into one uint8 tensor [B, C, H, W].</summary>
public static class BatchGather
{
    public static Tensor Images(ImageDataset dataset, IReadOnlyList<int> datasetIndices)
    {
        int size = dataset.ImageBytes;
        var buffer = new byte[datasetIndices.Count * size];
        for (int i = 0; i < datasetIndices.Count; i++)
            Buffer.BlockCopy(dataset.Pixels, datasetIndices[i] * size, buffer, i * size, size);
        return tensor(buffer, new long[] { datasetIndices.Count, dataset.Channels, dataset.Height, dataset.Width });
    }
}

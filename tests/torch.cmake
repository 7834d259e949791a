# Tests of the LibTorch part (src/torch.cmake): models, masking, output values, checkpoints,
# TorchScript fixtures (tests/data/torchscript, made by make_fixture.py with PyTorch).
harsanyi_add_test(test_network harsanyi_torch harsanyi_cuda)

"""The simulated ESP32, host side: app images, flash, bootloader, devices and their world."""

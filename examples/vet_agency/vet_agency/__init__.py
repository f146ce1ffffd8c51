"""A veterinary and food safety authority (兽医和食品安全局), the Single Window's fourth agency,
built outside the platform's repository code on the SDK wheel (``singlewindow-sdk``) alone."""

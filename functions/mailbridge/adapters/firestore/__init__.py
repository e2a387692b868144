"""adapters/firestore"""
